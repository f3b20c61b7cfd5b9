package event

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/distribution/distribution/v3/notifications"
)

// Reason says why an event was dropped; it is a metric label, so the set is
// closed.
type Reason string

// Why events are dropped.
const (
	Kept          Reason = ""
	Invalid       Reason = "invalid"        // missing id, action or repository, or a field of the wrong type
	Blob          Reason = "blob"           // push or pull of a layer or config blob
	UnknownDigest Reason = "unknown-digest" // digest delete the index does not know (a blob, or pushed before regwebhook ran)
	Unsupported   Reason = "unsupported"    // mount and actions regwebhook does not know
)

// Index is regwebhook's record of each repository's tags and manifests, read
// and changed inside the transaction that enqueues the event's jobs, so that a
// retried envelope sees the index exactly as the first try left it.
type Index interface {
	// Manifest returns the media type and the tags of a manifest the index knows.
	Manifest(ctx context.Context, repo, digest string) (mediaType string, tags []string, ok bool, err error)
	// Tag returns the manifest a tag points at.
	Tag(ctx context.Context, repo, tag string) (digest, mediaType string, ok bool, err error)
	// PutManifest records a manifest, and when tag is not empty points tag at it
	// (moving the tag off any manifest it pointed at before).
	PutManifest(ctx context.Context, repo, digest, mediaType, tag string) error
	// DeleteTag forgets a tag.
	DeleteTag(ctx context.Context, repo, tag string) error
	// DeleteManifest forgets a manifest. Tags that pointed at it stay until the
	// registry's tag deletes for them arrive.
	DeleteManifest(ctx context.Context, repo, digest string) error
}

// manifestTypes are the media types of manifests and indexes; everything else
// a registry pushes or pulls is a blob.
var manifestTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.oci.artifact.manifest.v1+json":             true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
}

// isManifest tells a manifest event from a blob event. The media type
// decides; for a type it does not know, the URL's /manifests/ path does.
func isManifest(n *notifications.Event) bool {
	if manifestTypes[n.Target.MediaType] {
		return true
	}
	return n.Target.MediaType != "application/octet-stream" && strings.Contains(n.Target.URL, "/manifests/")
}

// Normalize turns a parsed registry event into the event webhooks get, or a
// reason to drop it, and applies it to the index. It reads and writes nothing
// but idx, so it may run again when a transaction is retried.
func Normalize(ctx context.Context, n notifications.Event, raw json.RawMessage, idx Index) (Event, Reason, error) {
	ev := Event{
		ID:        n.ID,
		Timestamp: n.Timestamp,
		Action:    Action(n.Action),
		Target: Target{
			MediaType:  n.Target.MediaType,
			Size:       n.Target.Size,
			Digest:     string(n.Target.Digest),
			Length:     n.Target.Length,
			Repository: n.Target.Repository,
			Tag:        n.Target.Tag,
		},
		Request: Request{
			ID:        n.Request.ID,
			Host:      n.Request.Host,
			Method:    n.Request.Method,
			UserAgent: n.Request.UserAgent,
		},
		Raw: raw,
	}
	t := &ev.Target
	switch n.Action {
	case notifications.EventActionPush:
		if !isManifest(&n) {
			return ev, Blob, nil
		}
		if t.Digest == "" {
			return ev, Invalid, nil
		}
		return ev, Kept, idx.PutManifest(ctx, t.Repository, t.Digest, t.MediaType, t.Tag)

	case notifications.EventActionPull:
		if !isManifest(&n) {
			return ev, Blob, nil
		}
		return ev, Kept, nil

	case notifications.EventActionDelete:
		if t.Tag != "" {
			digest, mediaType, ok, err := idx.Tag(ctx, t.Repository, t.Tag)
			if err != nil {
				return ev, Kept, err
			}
			if ok {
				t.Digest, t.MediaType = digest, mediaType
			}
			return ev, Kept, idx.DeleteTag(ctx, t.Repository, t.Tag)
		}
		if t.Digest == "" {
			return ev, Invalid, nil
		}
		mediaType, tags, ok, err := idx.Manifest(ctx, t.Repository, t.Digest)
		if err != nil || !ok {
			return ev, UnknownDigest, err
		}
		t.MediaType, t.Tags = mediaType, tags
		return ev, Kept, idx.DeleteManifest(ctx, t.Repository, t.Digest)

	default:
		return ev, Unsupported, nil
	}
}
