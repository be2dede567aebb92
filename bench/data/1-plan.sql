-- The data set bench/run measures on (bench/README.md describes it), part 1 of 3:
-- units, users, inspections with their rows and problems, and the plan of the rectifications.
-- Run as the schema owner after `ducha migrate` and `ducha seed`:
--   psql -v inspections=2000 -v district="'东城区人民政府'" -f bench/data/1-plan.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT setseed(0.2026);

CREATE SCHEMA ducha_bench;
-- A sentence of n words: rank k of the vocabulary is drawn with a probability falling like
-- k^-0.55, now and then (0.3 %) a rare topic instead; a comma after some words.
CREATE FUNCTION ducha_bench.sentence(n int) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT rtrim(string_agg(CASE WHEN random() < 0.003 THEN r.a[1 + floor(random() * cardinality(r.a))::int]
                               ELSE v.a[1 + floor(cardinality(v.a) * random() ^ 2.2)::int] END
                          || CASE WHEN random() < 0.12 THEN '，' ELSE '' END, ''), '，') || '。'
  FROM generate_series(1, n),
  (SELECT ARRAY['公开','政务','信息','工作','网站','制度','整改','政府','栏目','及时','落实','部门',
                '要求','的','建立','完善','机制','发布','政策','解读','未','文件','规范','情况','台账',
                '加强','和','管理','更新不及时','对','按','已','政务公开','不','及','并','重大决策',
                '预公开','意见征集','政策解读','信息发布','门户网站','依申请公开','年度报告','公开目录',
                '公开指南','标准目录','基层','政务新媒体','建议提案','办理结果','主动公开','解读材料',
                '同步','法定期限','救济途径','答复','意见收集','采纳','专人负责','限期完成','每季度',
                '逐项','梳理','自查','督促','通报','考核','培训','保密审查','个人信息','链接失效',
                '错别字','图解','音视频','在线访谈','新闻发布会','政策问答','咨询','留言办理',
                '回应关切','舆情','财政预决算','三公经费','政府采购','行政许可','行政处罚','双随机',
                '权责清单','监督','信用信息','环境保护','食品安全','教育','医疗卫生','社会救助','扶贫',
                '就业创业','重点项目','公共资源交易','安全生产','明确','责任','时限','内容','存在',
                '问题','缺少','长期','空白','过期','不全','不一致','全面','开展','检查','编制','修订',
                '模板','统计','报告','年度','形式','单一','多元化','数据','开放','平台','整合','迁移',
                '集约化','无障碍','适老化','搜索','功能','互动','交流'] AS a) v,
  (SELECT ARRAY['殡葬','棚户区改造','征地拆迁','养老服务','残疾人','退役军人','防汛抗旱','地质灾害',
                '农村危房','义务教育','林长制','河长制','文物保护','非遗','气象灾害','渔业','畜牧',
                '水土保持','户籍','殡仪馆','公墓','疫苗','献血','彩票','宗教'] AS a) r
$$;

-- ---------------------------------------------------------------- units and users

INSERT INTO departments (name, kind)
SELECT n, 'department' FROM unnest(ARRAY['市教育局','市公安局','市民政局','市司法局','市人力资源社会保障局',
  '市自然资源局','市生态环境局','市住房城乡建设局','市交通运输局','市水利局','市农业农村局','市商务局',
  '市文化和旅游局','市卫生健康委','市退役军人事务局','市应急管理局','市市场监管局','市统计局','市医疗保障局',
  '市城市管理局','市林业局','市体育局','市信访局','市国资委','市地方金融监管局','市机关事务管理局',
  '市人防办','市粮食和储备局','市税务局','市气象局','市住房公积金管理中心','市消防救援支队',
  '市公共资源交易中心','市大数据局','市民族宗教局','市档案局','市残联','市住房保障中心']) n
WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.name = n AND d.parent_id IS NULL);
INSERT INTO departments (name, kind)
SELECT n || '人民政府', 'department' FROM unnest(ARRAY['东城区','西城区','南湖区','北山区','高新区','经开区',
  '临江县','青石县','白云县','龙泉县']) n
WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.name = n || '人民政府' AND d.parent_id IS NULL);
INSERT INTO departments (name, kind, parent_id)
SELECT s.n || '街道办事处', 'department', d.id
FROM departments d, unnest(ARRAY['城关','新华','人民','解放','和平','建设','文化','胜利']) s(n)
WHERE d.name LIKE '%人民政府' AND d.parent_id IS NULL;
INSERT INTO departments (name, kind, parent_id)
SELECT s.n || '社区居民委员会', 'department', d.id
FROM (SELECT d.id FROM departments d JOIN departments p ON p.id = d.parent_id
      WHERE p.name = :district ORDER BY d.id LIMIT 6) d, unnest(ARRAY['幸福','光明']) s(n);
INSERT INTO departments (name, kind, parent_id)
SELECT (ARRAY['办公室','政策法规科','信息公开科','执法支队','信息中心','综合科'])[1 + (d.id + k) % 6], 'department', d.id
FROM (SELECT id FROM departments WHERE parent_id IS NULL AND kind = 'department' AND name NOT LIKE '%人民政府'
      AND name LIKE '市%' ORDER BY id LIMIT 30) d, generate_series(0, 1) k;

INSERT INTO users (username, display_name, role)
SELECT 'inspector' || g, '督察员' || g, 'inspector' FROM generate_series(1, 12) g;
INSERT INTO users (username, display_name, role, department_id)
SELECT 'dept' || id, left(name, 90) || '联络员', 'department', id FROM departments
WHERE kind = 'department' AND (parent_id IS NULL OR name LIKE '%街道办事处');

CREATE TABLE ducha_bench.units AS
SELECT array_agg(id ORDER BY id) AS a FROM departments WHERE kind = 'department' AND merged_into_id IS NULL;
CREATE TABLE ducha_bench.district AS
SELECT ducha_subtree(id) AS a FROM departments WHERE name = :district AND parent_id IS NULL;

-- ---------------------------------------------------------------- inspections and their rows

INSERT INTO inspections (title, checklist_id, target_department_id, inspected_on, inspectors, status,
                         published, published_at, submitted_at, closed_at, created_by, created_at, updated_at)
SELECT format('%s年全面推进政务公开工作督察（%s）', extract(year FROM s.day)::int, d.name), cl.id, d.id,
       s.day, ARRAY['督察员' || s.who, '督察员' || (s.who % 12 + 1)],
       s.status, s.status <> 'in_progress',
       CASE WHEN s.status <> 'in_progress' THEN s.day + interval '12 days' END,
       CASE WHEN s.status <> 'in_progress' THEN s.day + interval '10 days' END,
       CASE WHEN s.status = 'closed' THEN s.day + interval '250 days' END,
       u.id, s.day, s.day + interval '12 days'
FROM (SELECT g, day, 1 + (random() * 11)::int AS who,
             units.a[1 + floor(random() * cardinality(units.a))::int] AS dept,
             CASE WHEN day > current_date - 20 OR random() < 0.03 THEN 'in_progress'
                  WHEN day < current_date - 260 AND random() < 0.6 THEN 'closed'
                  ELSE 'submitted' END AS status
      FROM (SELECT g, current_date - (random() * 395)::int AS day FROM generate_series(1, :inspections) g) g,
           ducha_bench.units units) s
JOIN departments d ON d.id = s.dept
JOIN users u ON u.username = 'inspector' || s.who
CROSS JOIN (SELECT id FROM checklists WHERE code = 'default' ORDER BY version DESC LIMIT 1) cl;

-- every task of the checklist, as POST /inspections makes them; 15 % not completed; an
-- inspection in progress has a third of its rows still to assess
INSERT INTO items (inspection_id, task_id, seq, completion, note, updated_at)
SELECT i.id, t.id, t.seq, x.completion,
       CASE WHEN x.completion = 'completed' AND random() < 0.1 THEN ducha_bench.sentence(6) END,
       i.created_at + interval '2 days'
FROM inspections i JOIN tasks t ON t.checklist_id = i.checklist_id
CROSS JOIN LATERAL (SELECT CASE WHEN i.status = 'in_progress' AND random() < 0.33 THEN 'not_assessed'
                                WHEN random() < 0.15 THEN 'not_completed' ELSE 'completed' END AS completion
                    WHERE t.id IS NOT NULL) x;
INSERT INTO item_material_departments (item_id, department_id, position)
SELECT it.id, m.department_id, m.position FROM items it JOIN task_material_departments m ON m.task_id = it.task_id;

INSERT INTO problems (item_id, ordinal, description, created_by, created_at, updated_at)
SELECT it.id, o, ducha_bench.sentence(10 + (random() * 6)::int), it.created_by, it.updated_at, it.updated_at
FROM (SELECT it.id, it.updated_at, i.created_by, 1 + (random() < 0.5)::int AS k
      FROM items it JOIN inspections i ON i.id = it.inspection_id WHERE it.completion = 'not_completed') it,
     generate_series(1, it.k) o;

-- ---------------------------------------------------------------- the plan of the rectifications

-- One row per rectification to be, with its id: first those the department user of :district
-- sees (its subtree is responsible or was inspected), then, of the rest, those that accept a
-- progress update (pending or in progress, of a submitted inspection), then everything else;
-- within a block in the order of the inspections' dates.
CREATE TABLE ducha_bench.rplan AS
SELECT s.*, base.n + row_number() OVER (ORDER BY NOT s.seen_by_district, NOT s.takes_progress, s.inspected_on,
                                                 s.problem_id, s.ordinal) AS id
FROM (SELECT s.*,
             s.dept = ANY (dd.a) OR s.target = ANY (dd.a) AS seen_by_district,
             s.istatus = 'submitted' AND s.status IN ('pending', 'in_progress') AS takes_progress,
             (SELECT id FROM users u WHERE u.role = 'department' AND u.department_id = s.dept ORDER BY id LIMIT 1)
               AS dept_user
      FROM (SELECT p.problem_id, p.ordinal::int AS ordinal, p.inspection_id, p.created, p.inspector, p.target, p.istatus,
                   p.inspected_on,
                   -- the inspected unit itself mostly, else any unit
                   CASE WHEN random() < 0.6 THEN p.target
                        ELSE units.a[1 + floor(random() * cardinality(units.a))::int] END AS dept,
                   p.inspected_on + 60 + (random() * 180)::int AS deadline,
                   CASE p.istatus WHEN 'in_progress' THEN 'pending' WHEN 'closed' THEN 'closed'
                     ELSE (SELECT CASE WHEN x < 0.35 THEN 'pending' WHEN x < 0.70 THEN 'in_progress'
                                       WHEN x < 0.82 THEN 'submitted' ELSE 'closed' END
                           FROM (SELECT random() AS x) z WHERE p.problem_id IS NOT NULL) END AS status,
                   CASE WHEN random() < 0.88 THEN 0 ELSE 1 + (random() * 2)::int END AS urges,
                   random() AS r
            FROM (SELECT pr.id AS problem_id, o AS ordinal, i.id AS inspection_id, pr.created_at AS created,
                         i.created_by AS inspector,
                         i.target_department_id AS target, i.status AS istatus, i.inspected_on
                  FROM problems pr JOIN items it ON it.id = pr.item_id JOIN inspections i ON i.id = it.inspection_id
                  CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 4)::int + (pr.id * 0)::int) o) p,
                 ducha_bench.units units) s,
           ducha_bench.district dd) s,
     (SELECT coalesce(max(id), 0) AS n FROM rectifications) base;

-- The secondary indexes of rectifications are built after the load, in one go (bench/data/3-after.sql):
-- kept up row by row, the GIN index of search_grams took minutes.
CREATE TABLE ducha_bench.dropped_indexes AS
SELECT c.relname AS name, pg_get_indexdef(x.indexrelid) AS def
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
WHERE x.indrelid = 'rectifications'::regclass AND NOT x.indisprimary AND NOT x.indisunique;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT name FROM ducha_bench.dropped_indexes LOOP
    EXECUTE format('DROP INDEX %I', r.name);
  END LOOP;
END $$;

-- The statistics (migrations/0016) are counted in one go after the load (bench/data/3-indexes.sql):
-- per row, the two sessions would wait on each other's cells, or deadlock over them.
ALTER TABLE rectifications DISABLE TRIGGER rectifications_statistics;
ALTER TABLE rectification_assignments DISABLE TRIGGER rectification_assignments_statistics;
-- So are the later forms' versions (migrations/0015): a new data set has no cached form to change,
-- and the two sessions would deadlock over the same unit's later inspections.
ALTER TABLE rectifications DISABLE TRIGGER rectifications_form_touch_later;
ALTER TABLE rectifications DISABLE TRIGGER rectifications_form_touch_later_update;
