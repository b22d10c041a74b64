-- The main database, $MBGROOT/data/billing.db (SPEC section 5).
-- Money columns are INTEGER minor units, except rates (price per minute), which are kept
-- as exact decimal strings because a price may have more digits than the currency.
-- Dates are 'YYYY-MM-DD'; an open end is NULL.

CREATE TABLE accounts (
  account TEXT PRIMARY KEY,
  name    TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- A number has at most one row valid on any day (checked by mbg load).
CREATE TABLE numbers (
  number     TEXT NOT NULL,            -- A-number, or a port/channel name
  account    TEXT NOT NULL,
  valid_from TEXT NOT NULL,
  valid_to   TEXT,                     -- exclusive; NULL = open
  PRIMARY KEY (number, valid_from)
) WITHOUT ROWID;

CREATE TABLE tariffs (
  tariff       TEXT NOT NULL,
  prefix       TEXT NOT NULL,          -- '' catches all
  direction    TEXT NOT NULL DEFAULT '',
  price        TEXT NOT NULL,          -- per minute, exact decimal string ('0.45')
  first        INTEGER NOT NULL DEFAULT 1,  -- first increment, seconds (>= 1)
  next         INTEGER NOT NULL DEFAULT 1,  -- next increments, seconds (>= 1)
  connect_fee  TEXT NOT NULL DEFAULT '0',   -- exact decimal string: added before the one rounding
  free_seconds INTEGER NOT NULL DEFAULT 0,  -- calls up to this long bill 0 s
  bucket       TEXT,                   -- NULL = none; else a bucket of the same tariff
  PRIMARY KEY (tariff, prefix)
) WITHOUT ROWID;

CREATE TABLE buckets (
  tariff  TEXT NOT NULL,
  bucket  TEXT NOT NULL,
  seconds INTEGER NOT NULL,            -- included seconds per month per account
  PRIMARY KEY (tariff, bucket)
) WITHOUT ROWID;

CREATE TABLE routes (
  pattern  TEXT PRIMARY KEY,           -- glob on dstchannel
  tariff   TEXT NOT NULL,
  position INTEGER NOT NULL            -- order of the rows as loaded: the first match wins
);

CREATE TABLE services (
  service     TEXT PRIMARY KEY,
  name        TEXT NOT NULL DEFAULT '',
  monthly_fee INTEGER,                 -- minor units; NULL = no fee
  daily_fee   INTEGER,                 -- minor units; NULL = no fee
  tariff      TEXT                     -- a telephony plan when set
) WITHOUT ROWID;

CREATE TABLE subscriptions (
  account TEXT NOT NULL,
  service TEXT NOT NULL,
  start   TEXT NOT NULL,
  stop    TEXT,                        -- exclusive; NULL = open
  PRIMARY KEY (account, service, start)
) WITHOUT ROWID;

CREATE TABLE schedule (
  date        TEXT NOT NULL,
  account     TEXT NOT NULL,
  action      TEXT NOT NULL CHECK (action IN ('start', 'stop', 'switch')),
  service     TEXT NOT NULL,
  new_service TEXT,                    -- for switch
  state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  reason      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (date, account, action, service)
) WITHOUT ROWID;

CREATE TABLE charges (
  day     TEXT NOT NULL,
  account TEXT NOT NULL,
  service TEXT NOT NULL,
  start   TEXT NOT NULL,               -- the subscription's start: with account and service, its key
  amount  INTEGER NOT NULL,            -- minor units
  PRIMARY KEY (day, account, service, start)
) WITHOUT ROWID;

-- Facts the stored data depend on, recorded once: 'money_decimals' is written by the first
-- `mbg load`, because every INTEGER amount above and in the datasets counts minor units of
-- that many decimals. A later mbg.toml that disagrees is refused, never silently rescaled.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
