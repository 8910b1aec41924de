// Package userevents is cart's consumer of customers' user events: it decodes UserDeleted
// (customers.v1) and has the cart domain erase the user's data. It is a transport, as grpcapi
// is: proto messages stop here.
package userevents

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/events"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// Durable is the name of cart's JetStream consumer of UserDeleted; its dead letters go to
// events.DeadLetterPrefix + Durable.
const Durable = "cart-user-deleted"

// Consumer returns the options of cart's durable consumer of UserDeleted, whose handler erases
// through svc.
func Consumer(svc *cart.Service) events.ConsumerOptions {
	return events.ConsumerOptions{
		Stream: events.CustomersStream, Durable: Durable, Subject: events.UserDeletedSubject,
		Type: "user.deleted", Handle: handler(svc),
	}
}

// handler applies one UserDeleted message.
func handler(svc *cart.Service) events.Handler {
	return func(ctx context.Context, data []byte) (events.Outcome, error) {
		var ev customersv1.UserDeleted
		if err := proto.Unmarshal(data, &ev); err != nil {
			return events.Outcome{}, events.Undecodable(err)
		}
		if err := check(&ev); err != nil {
			return events.Outcome{}, events.Undecodable(err)
		}
		dup, err := svc.Erase(ctx, cart.Erasure{EventID: ev.GetEventId(), UserID: ev.GetUserId()})
		if err != nil {
			return events.Outcome{}, err
		}
		return events.Outcome{Duplicate: dup, Occurred: ev.GetDeletedAt().AsTime()}, nil
	}
}

// errMalformed is an event that decodes but says nothing cart can apply.
var errMalformed = errors.New("UserDeleted without a valid event_id, user_id and deleted_at")

// check refuses an event whose ids are not UUIDs or that has no time: applying it could only
// erase the wrong thing.
func check(ev *customersv1.UserDeleted) error {
	if _, err := uuid.Parse(ev.GetEventId()); err != nil {
		return errMalformed
	}
	if _, err := uuid.Parse(ev.GetUserId()); err != nil {
		return errMalformed
	}
	if !ev.GetDeletedAt().IsValid() {
		return errMalformed
	}
	return nil
}
