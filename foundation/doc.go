// Package foundation is the root of the code both services share that knows nothing about
// users, products or carts: logging, the gRPC server and its interceptor chain, the REST
// gateway, database plumbing and the process lifecycle. Business code lives in the services.
package foundation
