-- wabill store, SQLite schema v5: the agent who sent each message (the outbound event's optional
-- `agent`), kept on its charge so that tenant invoices in the service can count the agents who
-- sent under the `sent` active-agent rule (decisions.md D36, D41, D44). NULL when the event named
-- none; charges stored before this version have none until their month is re-rated.

ALTER TABLE charges ADD COLUMN agent TEXT;
