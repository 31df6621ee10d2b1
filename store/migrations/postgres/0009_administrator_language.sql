-- An administrator's language (seed 002's "Language"): "en", "ru", or ""
-- when none was chosen.
ALTER TABLE administrators ADD COLUMN language TEXT NOT NULL DEFAULT '';
