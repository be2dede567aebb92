-- statistics_trend kept, beside each unit's row of a day, an all-units row (unit 0). Every
-- rectification created or closed anywhere added to that one row of its day, so each such write
-- waited for every other one not yet committed: a form import or a bulk insert held everyone's
-- creates and closes for its whole transaction. The all-units trend is now the sum of the units'
-- rows of its days (src/statistics.c, TREND_ROWS), read through an index by day.
DELETE FROM statistics_trend WHERE unit = 0;
CREATE INDEX statistics_trend_day_idx ON statistics_trend (day) INCLUDE (created, closed, closed_late);

-- The two functions that wrote unit 0, made again from their own stored definitions without it.
DO $$
DECLARE
  f record;
  body text;
BEGIN
  FOR f IN SELECT * FROM (VALUES ('statistics_count(statistics_facts, integer, date)', '(VALUES (f.unit), (0)) y(u)'),
                                 ('statistics_rebuild(date)', 'LATERAL (VALUES (f.unit), (0)) y(u)')) v(fn, unit_0) LOOP
    body := pg_get_functiondef(f.fn::regprocedure);
    IF position(f.unit_0 IN body) = 0 THEN
      RAISE EXCEPTION '% no longer writes the all-units row as 0016 did: update 0019', f.fn;
    END IF;
    EXECUTE replace(body, f.unit_0, replace(f.unit_0, ', (0)', ''));
  END LOOP;
END $$;
