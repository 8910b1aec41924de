package page_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/page"
)

type result struct {
	Limit, Len int
	Next       string
}

func TestFetch(t *testing.T) {
	all := make([]int, 150)
	for i := range all {
		all[i] = i
	}
	tests := []struct {
		name      string
		items     int
		requested int
		wantLimit int
		wantLen   int
		wantNext  string
	}{
		{"default size", 150, 0, page.DefaultSize + 1, page.DefaultSize, "19"},
		{"negative is the default", 150, -3, page.DefaultSize + 1, page.DefaultSize, "19"},
		{"clamped to the maximum", 150, 1000, page.MaxSize + 1, page.MaxSize, "99"},
		{"more follow", 5, 2, 3, 2, "1"},
		{"exactly one page", 5, 5, 6, 5, ""},
		{"short last page", 5, 10, 11, 5, ""},
		{"empty", 0, 10, 11, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotLimit int
			list := func(limit int) ([]int, error) {
				gotLimit = limit
				return all[:min(limit, tt.items)], nil
			}
			items, next, err := page.Fetch(tt.requested, list, strconv.Itoa)
			if err != nil {
				t.Fatal(err)
			}
			got := result{Limit: gotLimit, Len: len(items), Next: next}
			want := result{Limit: tt.wantLimit, Len: tt.wantLen, Next: tt.wantNext}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("limit asked, items returned and next key (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := page.Fetch(2, func(int) ([]int, error) { return nil, boom }, strconv.Itoa)
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
}
