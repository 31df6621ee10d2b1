package store

import (
	"context"
	"fmt"
)

// settingBaseURL names the public URL in server_settings.
const settingBaseURL = "base_url"

// SetBaseURL records the public URL a gatehouse serve runs with. Instances
// sharing a database should run with the same one; the last to start wins.
func (s *SQL) SetBaseURL(ctx context.Context, url string) error {
	_, err := s.exec(ctx, s.writer, `INSERT INTO server_settings (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		settingBaseURL, url, s.timestamp())
	if err != nil {
		return fmt.Errorf("store: record the base URL: %w", err)
	}
	return nil
}

// BaseURL returns the public URL last recorded by SetBaseURL; ErrNotFound
// when no server has recorded one.
func (s *SQL) BaseURL(ctx context.Context) (string, error) {
	var url string
	err := s.get(ctx, s.reader, &url, `SELECT value FROM server_settings WHERE name = ?`, settingBaseURL)
	return url, err
}
