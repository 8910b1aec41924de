// Package rpcs walks the RPCs that .proto files declare, for the packages that read their
// options once at start-up (access levels, idempotency, writes).
package rpcs

import (
	"iter"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// FullName is a method's name as gRPC calls it: "/cart.v1.CartService/AddItem".
func FullName(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

// All yields every method of every service in files.
func All(files *protoregistry.Files) iter.Seq[protoreflect.MethodDescriptor] {
	return func(yield func(protoreflect.MethodDescriptor) bool) {
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			services := fd.Services()
			for i := range services.Len() {
				methods := services.Get(i).Methods()
				for j := range methods.Len() {
					if !yield(methods.Get(j)) {
						return false
					}
				}
			}
			return true
		})
	}
}
