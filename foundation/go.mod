module github.com/acme/shop/foundation

go 1.26.7
