package gateway

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
)

// TestSuccessStatuses reads the (shop.v1.success) option of a service whose methods each
// declare one case below; the REST round trip of the real services' options is TestStatusCodes.
func TestSuccessStatuses(t *testing.T) {
	success := func(s shopv1.Success) *descriptorpb.MethodOptions {
		opts := &descriptorpb.MethodOptions{}
		proto.SetExtension(opts, shopv1.E_Success, s)
		return opts
	}
	tests := []struct {
		name string
		opts *descriptorpb.MethodOptions
		want int
	}{
		{"NoOption", nil, http.StatusOK},
		{"Unspecified", success(shopv1.Success_SUCCESS_UNSPECIFIED), http.StatusOK},
		{"Created", success(shopv1.Success_SUCCESS_CREATED), http.StatusCreated},
		{"NoContent", success(shopv1.Success_SUCCESS_NO_CONTENT), http.StatusNoContent},
		{"Unknown", success(shopv1.Success(http.StatusAccepted)), http.StatusOK},
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("demo/v1/demo.proto"), Package: proto.String("demo.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Empty")}},
		Service:     []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Demo")}},
	}
	for _, tt := range tests {
		fd.Service[0].Method = append(fd.Service[0].Method, &descriptorpb.MethodDescriptorProto{
			Name: proto.String(tt.name), InputType: proto.String(".demo.v1.Empty"), OutputType: proto.String(".demo.v1.Empty"), Options: tt.opts,
		})
	}
	file, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	sd := file.Services().ByName("Demo")
	want := statusCodes{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := successStatus(sd.Methods().ByName(protoreflect.Name(tt.name))); got != tt.want {
				t.Errorf("success status = %d, want %d", got, tt.want)
			}
		})
		if tt.want != http.StatusOK {
			want["/demo.v1.Demo/"+tt.name] = tt.want
		}
	}
	if diff := cmp.Diff(want, successStatuses([]protoreflect.ServiceDescriptor{sd})); diff != "" {
		t.Errorf("status codes, only for RPCs that do not answer 200 (-want +got):\n%s", diff)
	}
}
