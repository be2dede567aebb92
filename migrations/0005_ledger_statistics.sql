-- The planner needs to know how many rectifications each unit has, so that a ledger filtered to
-- a small unit starts from the unit's index instead of walking the deadline order.
ALTER TABLE rectifications ALTER responsible_department_id SET STATISTICS 1000;
ANALYZE rectifications;
