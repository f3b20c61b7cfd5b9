package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The tag index, read and changed only inside Ingest (event.Index).

// Manifest returns the media type of a manifest the index knows, and the tags
// that point at it, sorted.
func (t *ingestTx) Manifest(ctx context.Context, repo, digest string) (mediaType string, tags []string, ok bool, err error) {
	err = t.tx.QueryRowContext(ctx, `SELECT media_type FROM manifests WHERE repo = ? AND digest = ?`, repo, digest).Scan(&mediaType)
	if err == sql.ErrNoRows {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("look up manifest %s@%s: %w", repo, digest, t.s.classify(err))
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag`, repo, digest)
	if err != nil {
		return "", nil, false, fmt.Errorf("look up tags of %s@%s: %w", repo, digest, t.s.classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			return "", nil, false, fmt.Errorf("read tags of %s@%s: %w", repo, digest, t.s.classify(err))
		}
		tags = append(tags, tag)
	}
	if err := rows.Err(); err != nil {
		return "", nil, false, fmt.Errorf("read tags of %s@%s: %w", repo, digest, t.s.classify(err))
	}
	return mediaType, tags, true, nil
}

// Tag returns the manifest a tag points at. It answers even after that
// manifest was deleted, until the tag's own delete.
func (t *ingestTx) Tag(ctx context.Context, repo, tag string) (digest, mediaType string, ok bool, err error) {
	err = t.tx.QueryRowContext(ctx, `SELECT digest, media_type FROM tags WHERE repo = ? AND tag = ?`, repo, tag).Scan(&digest, &mediaType)
	if err == sql.ErrNoRows {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("look up tag %s:%s: %w", repo, tag, t.s.classify(err))
	}
	return digest, mediaType, true, nil
}

// PutManifest records a manifest and, when tag is not empty, points tag at it.
func (t *ingestTx) PutManifest(ctx context.Context, repo, digest, mediaType, tag string) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO manifests (repo, digest, media_type) VALUES (?, ?, ?)
		ON CONFLICT (repo, digest) DO UPDATE SET media_type = excluded.media_type`, repo, digest, mediaType)
	if err != nil {
		return fmt.Errorf("record manifest %s@%s: %w", repo, digest, t.s.classify(err))
	}
	if tag == "" {
		return nil
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO tags (repo, tag, digest, media_type) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type`, repo, tag, digest, mediaType)
	if err != nil {
		return fmt.Errorf("point tag %s:%s at %s: %w", repo, tag, digest, t.s.classify(err))
	}
	return nil
}

// DeleteTag forgets a tag.
func (t *ingestTx) DeleteTag(ctx context.Context, repo, tag string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM tags WHERE repo = ? AND tag = ?`, repo, tag); err != nil {
		return fmt.Errorf("delete tag %s:%s: %w", repo, tag, t.s.classify(err))
	}
	return nil
}

// DeleteManifest forgets a manifest; its tags stay until their own deletes.
func (t *ingestTx) DeleteManifest(ctx context.Context, repo, digest string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, digest); err != nil {
		return fmt.Errorf("delete manifest %s@%s: %w", repo, digest, t.s.classify(err))
	}
	return nil
}
