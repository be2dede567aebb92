-- Where a rectification sits, written once: its problem, item and inspection, by name. The joins
-- are LEFT JOINs (every rectification has all three), so that PostgreSQL drops those a query
-- does not use: a statement reads only what it names. Rows are locked through the table itself
-- (`JOIN rectifications x ON x.id = r.id ... FOR NO KEY UPDATE OF x`): a lock on the view would
-- reach its problem, item and inspection too.
CREATE VIEW rectification_rows AS
SELECT r.*,
       p.ordinal AS problem_ordinal, p.description AS problem_description, p.item_id,
       it.seq AS item_seq, it.task_id, it.inspection_id,
       i.title AS inspection_title, i.status AS inspection_status, i.target_department_id, i.batch_id
  FROM rectifications r
  LEFT JOIN problems p ON p.id = r.problem_id
  LEFT JOIN items it ON it.id = p.item_id
  LEFT JOIN inspections i ON i.id = it.inspection_id;
