// Package userevents writes the events customers publishes about its users to the outbox
// (package events), encoded as the protobuf messages of customers.v1: the only place where
// those messages are made.
package userevents

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/events"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// Deleted returns the function that adds, in the transaction tx that deletes the user userID,
// a UserDeleted event to the outbox, with a new id from newID, the time from now, and the
// trace context of the deleting request (customerdb.Store.DeleteWith).
func Deleted(newID func() string, now func() time.Time) func(ctx context.Context, tx *gorm.DB, userID string) error {
	return func(ctx context.Context, tx *gorm.DB, userID string) error {
		at := now().UTC()
		id := newID()
		data, err := proto.Marshal(&customersv1.UserDeleted{EventId: id, UserId: userID, DeletedAt: timestamppb.New(at)})
		if err != nil {
			return fmt.Errorf("encode UserDeleted: %w", err)
		}
		return events.Add(tx, events.Message{
			ID: id, Subject: events.UserDeletedSubject, Data: data, TraceParent: events.TraceParent(ctx), CreatedAt: at,
		})
	}
}
