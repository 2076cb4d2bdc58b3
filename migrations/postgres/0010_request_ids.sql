-- The id of each recorded request (X-Request-Id, received or generated), which the response
-- and the server's log line of the same request carry too: an error an identity provider
-- reports can be found in the console and in the logs. NULL for requests recorded before.
ALTER TABLE scim_requests ADD COLUMN request_id TEXT;
