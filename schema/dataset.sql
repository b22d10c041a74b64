-- Monthly traffic dataset: one file per month, YYYY-MM-01.db (SPEC section 4).
-- Created by mbg.db when the file is new; PRAGMA application_id and user_version are set there.

CREATE TABLE telephony_log (
  id         INTEGER PRIMARY KEY,      -- stable across VACUUM; never copied by merge
  source     TEXT NOT NULL,            -- switch: h323-gw-id or NAS address; PBX name; Asterisk host
  calldate   TEXT NOT NULL,            -- call start, billing time zone, 'YYYY-MM-DD HH:MM:SS'
  src        TEXT NOT NULL,            -- calling number (A) as received
  dst        TEXT NOT NULL,            -- called number (B) as received
  channel    TEXT NOT NULL DEFAULT '', -- incoming trunk, port or channel
  dstchannel TEXT NOT NULL DEFAULT '', -- outgoing trunk, port or channel
  duration   INTEGER NOT NULL,         -- seconds, seizure/setup to release
  billsec    INTEGER NOT NULL,         -- seconds, answer to release; 0 = unanswered
  cause      TEXT NOT NULL DEFAULT '', -- release cause, decimal Q.850 where known
  callid     TEXT NOT NULL DEFAULT '', -- the switch's own id of this call leg, '' if none
  extra      TEXT,                     -- JSON object: the format's other fields, or NULL
  is_new     INTEGER NOT NULL DEFAULT 1,
  UNIQUE (source, calldate, src, dst, channel, dstchannel, duration, billsec, callid)
    ON CONFLICT IGNORE
);

-- Rating reads the month's new calls in (calldate, id) order.
CREATE INDEX telephony_log_new ON telephony_log (calldate, id) WHERE is_new = 1;

-- Rating results: written by rating only, never merged.
CREATE TABLE telephony_cost (
  log_id    INTEGER NOT NULL,          -- telephony_log.id
  tariff    TEXT NOT NULL,
  account   TEXT NOT NULL DEFAULT '',  -- '' when the call has no account (route tariffs)
  direction TEXT NOT NULL DEFAULT '',
  prefix    TEXT NOT NULL,             -- the matched prefix of the tariff
  number    TEXT NOT NULL,             -- called number after normalization
  seconds   INTEGER NOT NULL,          -- billed seconds (after free seconds and increments)
  bucket_seconds INTEGER NOT NULL DEFAULT 0, -- of those, paid by the bucket
  amount    INTEGER NOT NULL,          -- minor units (kopecks), rounded once per call
  role      TEXT NOT NULL CHECK (role IN ('plan', 'route')),
                                       -- plan: a tariff of the account's services that day,
                                       -- what the customer pays; route: the provider's tariff
                                       -- chosen by dstchannel, what carrying the call costs
  PRIMARY KEY (log_id, tariff)
) WITHOUT ROWID;

CREATE TABLE telephony_unrated (
  log_id INTEGER NOT NULL,
  tariff TEXT NOT NULL DEFAULT '',     -- '' when the reason concerns the whole call
  reason TEXT NOT NULL,                -- short fixed words: 'no rate', 'unknown account', ...
  PRIMARY KEY (log_id, tariff)
) WITHOUT ROWID;

CREATE TABLE telephony_counter (
  account TEXT NOT NULL,
  tariff  TEXT NOT NULL,
  bucket  TEXT NOT NULL,
  seconds INTEGER NOT NULL,            -- bucket seconds used so far this month
  PRIMARY KEY (account, tariff, bucket)
) WITHOUT ROWID;
