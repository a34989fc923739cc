-- 0004: the normalised webhook event the route parsed (WebhookEvent.to_dict() as JSON, without the raw
-- body), so the webhook job reads it back typed instead of parsing the sender's body a second time.
-- `payload` keeps the decoded body for the API and dashboard. Rows recorded before this migration have
-- no event (NULL); the job parses their payload once.
ALTER TABLE webhook_events ADD COLUMN event TEXT;
