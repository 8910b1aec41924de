package cart

import "errors"

// Errors the domain returns; the transport maps each to one status code. Invalid input is a
// *validation.Error and a caller acting beyond their rights permission.ErrDenied, as in every
// service.
var (
	// ErrProductNotFound means the product does not exist.
	ErrProductNotFound = errors.New("product not found")
	// ErrItemNotFound means the product is not in the cart.
	ErrItemNotFound = errors.New("product is not in the cart")
	// ErrUserErased means the cart's user was deleted and their data erased: the cart is gone
	// for everyone, admins included.
	ErrUserErased = errors.New("the cart's user was deleted")
)
