package customerdb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/migrations"
)

// The lookup behind every token validation, on every dialect: one caller at a time, and 32 at
// once, as under load, when lookups share queries.

const benchSessions = 100

// benchStore returns a store with benchSessions users, each with one live session.
func benchStore(b *testing.B, dialect string) (*customerdb.Store, []string) {
	b.Helper()
	s := dbtest.Store(b, dialect, migrations.All(false), customerdb.New)
	ctx := context.Background()
	ids := make([]string, benchSessions)
	for i := range ids {
		u := newUser(fmt.Sprintf("user%d@example.com", i))
		if err := s.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		ids[i] = uuid.NewString()
		if err := s.CreateSession(ctx, customer.Session{ID: ids[i], UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return s, ids
}

func BenchmarkSessionUser(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, ids := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			i := 0
			defer dbtest.ReportCPU(b)()
			for b.Loop() {
				if _, err := s.SessionUser(ctx, ids[i%benchSessions], t0); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkSessionUserConcurrent(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, ids := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			var next atomic.Int64 // callers ask for different keys, as many users would
			b.SetParallelism(16)  // 32 callers on 2 cores, as make bench's 32 connections
			b.ResetTimer()
			defer dbtest.ReportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if _, err := s.SessionUser(ctx, ids[i%benchSessions], t0); err != nil {
						b.Errorf("SessionUser: %v", err)
						return
					}
				}
			})
		})
	}
}
