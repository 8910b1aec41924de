module github.com/acme/shop/cart-svc

go 1.26.7

replace (
	github.com/acme/shop/foundation => ../foundation
	github.com/acme/shop/protos => ../protos
)
