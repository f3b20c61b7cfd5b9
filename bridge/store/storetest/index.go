package storetest

import (
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// IndexView is what the tag index answers about the repositories, digests
// and tags the cases use: manifests by "repo@digest", tags by "repo:tag".
type IndexView struct {
	Manifests map[string]ManifestView
	Tags      map[string]TagView
}

// ManifestView is what Index.Manifest answers for a manifest it knows.
type ManifestView struct {
	MediaType string
	Tags      []string
}

// TagView is what Index.Tag answers for a tag it knows.
type TagView struct {
	Digest, MediaType string
}

const (
	app, other     = "team/app", "other"
	d1, d2, d3     = "sha256:1", "sha256:2", "sha256:3"
	m1, m2         = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"
	v1, v2, latest = "v1", "v2", "latest"
)

// put, delTag and delManifest are index changes, each committed by its own
// Ingest as one envelope's would be.
type indexOp func(f *fixture, tx store.Tx) error

func put(repo, digest, mediaType, tag string) indexOp {
	return func(f *fixture, tx store.Tx) error { return tx.PutManifest(f.ctx, repo, digest, mediaType, tag) }
}

func delTag(repo, tag string) indexOp {
	return func(f *fixture, tx store.Tx) error { return tx.DeleteTag(f.ctx, repo, tag) }
}

func delManifest(repo, digest string) indexOp {
	return func(f *fixture, tx store.Tx) error { return tx.DeleteManifest(f.ctx, repo, digest) }
}

var indexCases = []testCase{
	indexCase("a push records the manifest and its tag", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{v1}}},
		Tags:      map[string]TagView{app + ":" + v1: {d1, m1}},
	}, put(app, d1, m1, v1)),

	indexCase("a push by digest records the manifest without tags", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, nil}},
	}, put(app, d1, m1, "")),

	indexCase("a manifest's tags come sorted, each once", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{latest, v1, v2}}},
		Tags:      map[string]TagView{app + ":" + latest: {d1, m1}, app + ":" + v1: {d1, m1}, app + ":" + v2: {d1, m1}},
	}, put(app, d1, m1, v2), put(app, d1, m1, latest), put(app, d1, m1, v1), put(app, d1, m1, v1)),

	indexCase("a push by tag moves the tag off its old manifest", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{v1}}, app + "@" + d2: {m2, []string{latest}}},
		Tags:      map[string]TagView{app + ":" + latest: {d2, m2}, app + ":" + v1: {d1, m1}},
	}, put(app, d1, m1, latest), put(app, d1, m1, v1), put(app, d2, m2, latest)),

	indexCase("a tag delete forgets the tag, not the manifest", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{v2}}},
		Tags:      map[string]TagView{app + ":" + v2: {d1, m1}},
	}, put(app, d1, m1, v1), put(app, d1, m1, v2), delTag(app, v1)),

	indexCase("a manifest delete keeps its tags until their own deletes", IndexView{
		Tags: map[string]TagView{app + ":" + v1: {d1, m1}, app + ":" + v2: {d1, m1}},
	}, put(app, d1, m1, v1), put(app, d1, m1, v2), delManifest(app, d1)),

	indexCase("the tag deletes after a manifest delete empty the index", IndexView{},
		put(app, d1, m1, v1), put(app, d1, m1, v2), delManifest(app, d1), delTag(app, v2), delTag(app, v1)),

	indexCase("repositories are apart", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{v1}}, other + "@" + d2: {m2, []string{v2}}},
		Tags:      map[string]TagView{app + ":" + v1: {d1, m1}, other + ":" + v2: {d2, m2}},
	}, put(app, d1, m1, v1), put(other, d1, m1, v1), put(other, d2, m2, v2), delTag(other, v1), delManifest(other, d1)),

	indexCase("deletes of what the index does not know change nothing", IndexView{
		Manifests: map[string]ManifestView{app + "@" + d1: {m1, []string{v1}}},
		Tags:      map[string]TagView{app + ":" + v1: {d1, m1}},
	}, put(app, d1, m1, v1), delTag(app, v2), delManifest(app, d3), delTag(other, v1), delManifest(other, d1)),

	{"dedupe: Seen after MarkSeen, until Maintain forgets ids whose until has passed", func(f *fixture) {
		f.ingest(func(tx store.Tx) error {
			for id, until := range map[string]time.Time{"kept": f.at(hour), "gone": f.at(-time.Second), "renewed": f.at(-time.Second)} {
				if err := tx.MarkSeen(f.ctx, id, until); err != nil {
					return err
				}
			}
			return nil
		})
		f.ingest(func(tx store.Tx) error { return tx.MarkSeen(f.ctx, "renewed", f.at(hour)) })
		f.wantSeen(map[string]bool{"kept": true, "renewed": true, "never": false})
		// Forgotten is not compared: a store may forget by itself (Redis).
		m, err := f.s.Maintain(f.ctx, time.Now(), 24*hour)
		if err != nil {
			f.t.Fatalf("maintain: %v", err)
		}
		if m.Reclaimed != 0 || m.Expired != 0 {
			f.t.Errorf("maintain: got %+v, want nothing reclaimed or expired", m)
		}
		f.wantSeen(map[string]bool{"kept": true, "renewed": true, "gone": false, "never": false})
	}},
}

// indexCase commits ops, each in its own Ingest, and checks the index after.
func indexCase(name string, want IndexView, ops ...indexOp) testCase {
	return testCase{name, func(f *fixture) {
		for _, op := range ops {
			f.ingest(func(tx store.Tx) error { return op(f, tx) })
		}
		f.wantIndex(want)
	}}
}

// ingest commits fn.
func (f *fixture) ingest(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.s.Ingest(f.ctx, fn); err != nil {
		f.t.Fatalf("ingest: %v", err)
	}
}

// indexView reads the index's answers about the cases' repositories, digests
// and tags.
func (f *fixture) indexView() IndexView {
	f.t.Helper()
	v := IndexView{Manifests: map[string]ManifestView{}, Tags: map[string]TagView{}}
	f.ingest(func(tx store.Tx) error {
		clear(v.Manifests)
		clear(v.Tags)
		for _, repo := range []string{app, other} {
			for _, digest := range []string{d1, d2, d3} {
				mediaType, tags, ok, err := tx.Manifest(f.ctx, repo, digest)
				if err != nil {
					return err
				}
				if ok {
					v.Manifests[repo+"@"+digest] = ManifestView{mediaType, tags}
				}
			}
			for _, tag := range []string{v1, v2, latest} {
				digest, mediaType, ok, err := tx.Tag(f.ctx, repo, tag)
				if err != nil {
					return err
				}
				if ok {
					v.Tags[repo+":"+tag] = TagView{digest, mediaType}
				}
			}
		}
		return nil
	})
	return v
}

// wantIndex checks the index's answers.
func (f *fixture) wantIndex(want IndexView) {
	f.t.Helper()
	if diff := cmpDiff(want, f.indexView()); diff != "" {
		f.t.Errorf("index (-want +got):\n%s", diff)
	}
}

// wantSeen checks what Seen answers for each event id.
func (f *fixture) wantSeen(want map[string]bool) {
	f.t.Helper()
	got := map[string]bool{}
	f.ingest(func(tx store.Tx) error {
		for id := range want {
			seen, err := tx.Seen(f.ctx, id)
			if err != nil {
				return err
			}
			got[id] = seen
		}
		return nil
	})
	if diff := cmpDiff(want, got); diff != "" {
		f.t.Errorf("seen (-want +got):\n%s", diff)
	}
}
