-- Progress events of every hop, so that any node of a pool streams a submission's
-- progress wherever its hops ran. `id` orders a submission's events (and is the SSE
-- event id); rows go with the outcomes, after the retention.
CREATE TABLE progress (
    id bigserial PRIMARY KEY,
    root text NOT NULL,
    event jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX progress_by_root ON progress (root, id);
CREATE INDEX progress_by_age ON progress (recorded_at);
