// Package page pages through an ordered list the way every list RPC does: the requested page
// size is clamped, and one item more than the page holds is fetched to learn whether another
// page follows, without counting.
package page

// Page sizes of every list.
const (
	// DefaultSize is the size of a page when the request asks for none (0).
	DefaultSize = 20
	// MaxSize is the largest page; larger requests get this many.
	MaxSize = 100
)

// Size is the page size to use for a requested one: DefaultSize for 0 or less, at most MaxSize.
func Size(requested int) int {
	switch {
	case requested <= 0:
		return DefaultSize
	case requested > MaxSize:
		return MaxSize
	}
	return requested
}

// Fetch returns one page of at most Size(requested) items. list is called once, with that size
// plus one as the limit; next is the key of the page's last item when more items follow, and
// "" when this is the last page.
func Fetch[T any](requested int, list func(limit int) ([]T, error), key func(T) string) (items []T, next string, err error) {
	size := Size(requested)
	items, err = list(size + 1)
	if err != nil {
		return nil, "", err
	}
	if len(items) <= size {
		return items, "", nil
	}
	items = items[:size]
	return items, key(items[size-1]), nil
}
