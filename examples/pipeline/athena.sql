-- The article's Athena table over the by-livestream layout; run with
--   changepipe query --data ./changepipe-data < athena.sql   (or --endpoint http://127.0.0.1:4566)
CREATE EXTERNAL TABLE IF NOT EXISTS chat_messages (
  LivestreamID STRING,
  UID BIGINT,
  UserID STRING,
  Message STRING,
  CreatedAt STRING
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://chat-bucket/Livestreams/';

SELECT LivestreamID, count(*) AS messages FROM chat_messages GROUP BY LivestreamID ORDER BY LivestreamID;
