-- The activity log's indexes cost its writes most: a row is logged for every SCIM request.
-- - By resource: only the requests that changed a resource or failed, which the console's
--   user page lists. Reads (an IdP's GET of a user, the bulk of its traffic) would put a
--   random resource id into this index on every request and write a page of it each time.
-- - By time: gone. Pruning deletes the oldest rows by id, which follows time.
DROP INDEX scim_requests_resource;
CREATE INDEX scim_requests_resource ON scim_requests (organisation_id, resource_id)
    WHERE method <> 'GET' OR status >= 400;
DROP INDEX scim_requests_at;
