-- The shared control plane of a pool of nodes: what is deployed, the components and
-- their compiled forms, and the outcomes of envelopes. Applied by every node at start,
-- under an advisory lock, so nodes starting together apply it once.

-- One row per deployed actor: kind, versions and options as JSON (the same record a
-- single node keeps in its data directory).
CREATE TABLE actors (
    name       text PRIMARY KEY,
    record     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Uploaded components, once per content digest.
CREATE TABLE components (
    digest     text PRIMARY KEY,
    bytes      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Compiled components, per digest and engine compatibility key: a node with the same
-- engine deserialises instead of compiling.
CREATE TABLE artifacts (
    digest     text NOT NULL,
    engine     text NOT NULL,
    bytes      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (digest, engine)
);

-- Submissions through a node's API, so any node answers `pending` for them.
CREATE TABLE submissions (
    id           text PRIMARY KEY,
    submitted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX submissions_by_age ON submissions (submitted_at);

-- Envelopes taken by happy-end or error-end, one row per branch of a submission's
-- fan-out. The key makes a redelivered end message a no-op.
CREATE TABLE ended (
    root        text NOT NULL,
    branch      text NOT NULL,
    end_actor   text NOT NULL,
    envelope    jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (root, branch)
);
CREATE INDEX ended_by_age ON ended (recorded_at);
