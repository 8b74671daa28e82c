// Package apikey sends an Assay API key with every call, as the `assay` command does:
//
//	conn, err := grpc.Dial(addr, creds, grpc.WithPerRPCCredentials(apikey.FromEnv()))
//
// The server reads `authorization: Bearer KEY`.
package apikey

import (
	"context"
	"os"
)

// Key is an API key, sent as `authorization: Bearer KEY`; an empty key sends nothing.
type Key string

// FromEnv is the key of ASSAY_API_KEY (empty when it is not set).
func FromEnv() Key {
	return Key(os.Getenv("ASSAY_API_KEY"))
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (k Key) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if k == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a key may go over
// plaintext to a server on loopback, as the server allows; use TLS elsewhere.
func (Key) RequireTransportSecurity() bool {
	return false
}
