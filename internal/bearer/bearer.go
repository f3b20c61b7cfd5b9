// Package bearer checks "Authorization: Bearer <token>" headers, for the
// receiver's token and the admin token alike.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Match reports whether header is "Bearer <token>" (the scheme in any case).
// It takes the same time whatever the header holds: both sides are hashed
// first, so not even the token's length shows.
func Match(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		got = ""
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && ok
}
