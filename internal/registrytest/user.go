package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What each action makes the registry send, in order (see TESTING.md and
// the fixtures):
//
//   - PushImage: a blob push per blob (config, layer), then a manifest push
//     with the tag.
//   - PushImageByDigest: the blob pushes, then a manifest push without tag.
//   - PushIndex: for each child its blob pushes and a manifest push without
//     tag, then the index push with the tag.
//   - Tag: a manifest pull (the client GETs it), then a push with the tag.
//   - DeleteManifest: a delete with the digest, then a delete per tag that
//     pointed at it, all with one request.id.
//   - DeleteTag: a delete with the tag and no digest.
//   - Pull: a manifest pull.
//
// Every pushed image is new (random content): a push never finds its
// manifest already there.

// PushImage pushes a new one-layer OCI image (a few hundred bytes) as
// repo:tag and returns its manifest digest.
func (r *Registry) PushImage(t testing.TB, repo, tag string) string {
	t.Helper()
	img := newImage(t)
	ref := r.ref(t, repo+":"+tag)
	if err := remote.Write(ref, img, r.options(t)...); err != nil {
		t.Fatalf("registrytest: push image %s: %v", ref, err)
	}
	return digestOf(t, img)
}

// PushImageByDigest pushes a new image to repo without a tag and returns its
// manifest digest.
func (r *Registry) PushImageByDigest(t testing.TB, repo string) string {
	t.Helper()
	img := newImage(t)
	digest := digestOf(t, img)
	ref := r.ref(t, repo+"@"+digest)
	if err := remote.Write(ref, img, r.options(t)...); err != nil {
		t.Fatalf("registrytest: push image %s: %v", ref, err)
	}
	return digest
}

// PushIndex pushes an OCI index of children new images (one platform each)
// as repo:tag and returns the index digest and the children's digests in
// index order.
func (r *Registry) PushIndex(t testing.TB, repo, tag string, children int) (string, []string) {
	t.Helper()
	arches := []string{"amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64"}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var childDigests []string
	for i := range children {
		img := newImage(t)
		childDigests = append(childDigests, digestOf(t, img))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: "linux", Architecture: arches[i%len(arches)]},
			},
		})
	}
	ref := r.ref(t, repo+":"+tag)
	if err := remote.WriteIndex(ref, idx, r.options(t)...); err != nil {
		t.Fatalf("registrytest: push index %s: %v", ref, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatalf("registrytest: digest of index %s: %v", ref, err)
	}
	return digest.String(), childDigests
}

// Tag points newTag in repo at the manifest digest, as `crane tag` does: it
// GETs the manifest and PUTs it under the new tag.
func (r *Registry) Tag(t testing.TB, repo, digest, newTag string) {
	t.Helper()
	src := r.ref(t, repo+"@"+digest)
	desc, err := remote.Get(src, r.options(t)...)
	if err != nil {
		t.Fatalf("registrytest: get %s to tag it: %v", src, err)
	}
	dst, err := name.NewTag(r.host+"/"+repo+":"+newTag, name.Insecure)
	if err != nil {
		t.Fatalf("registrytest: parse tag %q: %v", newTag, err)
	}
	if err := remote.Tag(dst, desc, r.options(t)...); err != nil {
		t.Fatalf("registrytest: tag %s as %s: %v", src, dst, err)
	}
}

// DeleteManifest deletes the manifest repo@digest, and with it every tag
// that pointed at it.
func (r *Registry) DeleteManifest(t testing.TB, repo, digest string) {
	t.Helper()
	r.delete(t, repo+"@"+digest)
}

// DeleteTag deletes repo:tag (DELETE /v2/<repo>/manifests/<tag>); the
// manifest and its other tags stay.
func (r *Registry) DeleteTag(t testing.TB, repo, tag string) {
	t.Helper()
	r.delete(t, repo+":"+tag)
}

// Pull GETs the manifest repo:ref or repo@ref and returns its digest.
func (r *Registry) Pull(t testing.TB, repo, ref string) string {
	t.Helper()
	sep := ":"
	if _, err := v1.NewHash(ref); err == nil {
		sep = "@"
	}
	src := r.ref(t, repo+sep+ref)
	desc, err := remote.Get(src, r.options(t)...)
	if err != nil {
		t.Fatalf("registrytest: pull %s: %v", src, err)
	}
	return desc.Digest.String()
}

func (r *Registry) delete(t testing.TB, ref string) {
	t.Helper()
	parsed := r.ref(t, ref)
	if err := remote.Delete(parsed, r.options(t)...); err != nil {
		t.Fatalf("registrytest: delete %s: %v", parsed, err)
	}
}

// ref parses repo:tag or repo@digest on this registry, over plain HTTP.
func (r *Registry) ref(t testing.TB, ref string) name.Reference {
	t.Helper()
	parsed, err := name.ParseReference(r.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatalf("registrytest: parse reference %q: %v", ref, err)
	}
	return parsed
}

func (r *Registry) options(t testing.TB) []remote.Option {
	return []remote.Option{
		remote.WithContext(t.Context()),
		remote.WithTransport(r.srv.Client().Transport),
		remote.WithUserAgent("registrytest"),
	}
}

// newImage is a new OCI image with one random layer of 100 bytes.
func newImage(t testing.TB) v1.Image {
	t.Helper()
	layer, err := random.Layer(100, types.OCILayer)
	if err != nil {
		t.Fatalf("registrytest: make layer: %v", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatalf("registrytest: make image: %v", err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("registrytest: image digest: %v", err)
	}
	return d.String()
}
