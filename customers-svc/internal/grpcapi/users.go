package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/permission"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
)

func toProtoUser(u customer.User) *customersv1.User {
	return &customersv1.User{
		Id:        u.ID,
		Email:     u.Email,
		FirstName: u.FirstName,
		LastName:  u.LastName,
		IsAdmin:   u.IsAdmin,
		CreatedAt: timestamppb.New(u.CreatedAt),
		UpdatedAt: timestamppb.New(u.UpdatedAt),
		Etag:      u.ETag(),
	}
}

// mustCaller returns the caller the auth interceptor authenticated. Its absence on an RPC that
// requires a token is a wiring bug, so it fails closed.
func mustCaller(ctx context.Context) (customer.Caller, error) {
	c, ok := callerFrom(ctx)
	if !ok {
		return customer.Caller{}, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	return c, nil
}

// CreateUser implements customersv1.UserServiceServer.
func (s *UserServer) CreateUser(ctx context.Context, req *customersv1.CreateUserRequest) (*customersv1.CreateUserResponse, error) {
	var caller *customer.Caller
	if c, ok := callerFrom(ctx); ok {
		caller = &c
	}
	u, err := s.svc.Register(ctx, caller, customer.NewUser{
		Email: req.GetEmail(), Password: req.GetPassword(),
		FirstName: req.GetFirstName(), LastName: req.GetLastName(), IsAdmin: req.GetIsAdmin(),
	}, grpcserver.ClientAddr(ctx))
	if err != nil {
		return nil, err
	}
	return &customersv1.CreateUserResponse{User: toProtoUser(u)}, nil
}

// ListUsers implements customersv1.UserServiceServer.
func (s *UserServer) ListUsers(ctx context.Context, req *customersv1.ListUsersRequest) (*customersv1.ListUsersResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	q := customer.ListQuery{Search: req.GetSearch(), Limit: int(req.GetPageSize())}
	if req.GetPageToken() != "" {
		after, err := s.pages.Decode(req.GetPageToken(), req.GetSearch())
		if err != nil {
			// Checked after authorization, so that only admins learn about page tokens.
			if !caller.IsAdmin {
				return nil, permission.ErrDenied
			}
			return nil, err
		}
		q.After = &customer.Cursor{ID: after}
	}
	users, next, err := s.svc.ListUsers(ctx, caller, q)
	if err != nil {
		return nil, err
	}
	res := &customersv1.ListUsersResponse{Users: make([]*customersv1.User, len(users))}
	for i, u := range users {
		res.Users[i] = toProtoUser(u)
	}
	if next != nil {
		res.NextPageToken = s.pages.Encode(next.ID, req.GetSearch())
	}
	return res, nil
}

// GetUser implements customersv1.UserServiceServer.
func (s *UserServer) GetUser(ctx context.Context, req *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.User(ctx, caller, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &customersv1.GetUserResponse{User: toProtoUser(u)}, nil
}

// UpdateUser implements customersv1.UserServiceServer.
func (s *UserServer) UpdateUser(ctx context.Context, req *customersv1.UpdateUserRequest) (*customersv1.UpdateUserResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.UpdateUser(ctx, caller, req.GetUserId(), customer.Changes{
		Email: req.Email, FirstName: req.FirstName, LastName: req.LastName, IsAdmin: req.IsAdmin,
	}, req.GetCurrentPassword(), grpcserver.Precondition(ctx, req.GetEtag()))
	if err != nil {
		return nil, err
	}
	return &customersv1.UpdateUserResponse{User: toProtoUser(u)}, nil
}

// DeleteUser implements customersv1.UserServiceServer.
func (s *UserServer) DeleteUser(ctx context.Context, req *customersv1.DeleteUserRequest) (*customersv1.DeleteUserResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeleteUser(ctx, caller, req.GetUserId(), req.GetCurrentPassword(), grpcserver.Precondition(ctx, req.GetEtag())); err != nil {
		return nil, err
	}
	return &customersv1.DeleteUserResponse{}, nil
}

// ChangePassword implements customersv1.UserServiceServer.
func (s *UserServer) ChangePassword(ctx context.Context, req *customersv1.ChangePasswordRequest) (*customersv1.ChangePasswordResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.ChangePassword(ctx, caller, req.GetUserId(), req.GetCurrentPassword(), req.GetNewPassword()); err != nil {
		return nil, err
	}
	return &customersv1.ChangePasswordResponse{}, nil
}

// ExistingUsers implements customersv1.UserServiceServer. The server lets only other services
// call it (an internal RPC).
func (s *UserServer) ExistingUsers(ctx context.Context, req *customersv1.ExistingUsersRequest) (*customersv1.ExistingUsersResponse, error) {
	ids, err := s.svc.ExistingUsers(ctx, req.GetUserIds())
	if err != nil {
		return nil, err
	}
	return &customersv1.ExistingUsersResponse{UserIds: ids}, nil
}
