# Run by the postgres image's entrypoint once, when it initialises an empty data directory:
# one role and one database per service, as in production. The passwords come from the Secret
# postgres-dev through the environment, and psql quotes them (:'var').
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set customers_password="$CUSTOMERS_DB_PASSWORD" \
  --set cart_password="$CART_DB_PASSWORD" <<'SQL'
CREATE ROLE customers LOGIN PASSWORD :'customers_password';
CREATE DATABASE customers OWNER customers;
CREATE ROLE cart LOGIN PASSWORD :'cart_password';
CREATE DATABASE cart OWNER cart;
SQL
