-- Subjects' personal details (masked by role in the API) and photos in their own table.
ALTER TABLE subjects
    ADD COLUMN pinfl         text CHECK (pinfl ~ '^[0-9]{14}$'),
    ADD COLUMN date_of_birth date,
    ADD COLUMN sex           text CHECK (sex IN ('F', 'M')),
    ADD COLUMN address       text,
    ADD COLUMN phone         text,
    ADD COLUMN status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'released',
                                                                                'wanted', 'deceased')),
    ADD COLUMN exemptions    jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX subjects_pinfl_key ON subjects (pinfl) WHERE pinfl IS NOT NULL;

CREATE TABLE subject_photos (
    subject_id   text PRIMARY KEY REFERENCES subjects(id),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    size_bytes   integer NOT NULL CHECK (size_bytes BETWEEN 1 AND 1048576),
    sha256       text NOT NULL,
    data         bytea NOT NULL,
    uploaded_by  text NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
