PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE server_usage (
	id INTEGER NOT NULL, 
	user VARCHAR(255) NOT NULL, 
	server_name VARCHAR(255) NOT NULL, 
	profile VARCHAR(255) NOT NULL, 
	gpus INTEGER NOT NULL, 
	gpu_type VARCHAR(64), 
	cpu FLOAT NOT NULL, 
	memory INTEGER NOT NULL, 
	started_at FLOAT NOT NULL, 
	stopped_at FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO server_usage VALUES(1,'alice','','gpu-a100',1,'a100',8.0,34359738368,1764547200.0,1764554400.0);
INSERT INTO server_usage VALUES(2,'bob','','cpu',0,NULL,2.0,4294967296,1764550800.0,NULL);
CREATE TABLE server_usage_group (
	usage_id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	PRIMARY KEY (usage_id, name), 
	FOREIGN KEY(usage_id) REFERENCES server_usage (id) ON DELETE CASCADE
);
INSERT INTO server_usage_group VALUES(1,'gpu-residents');
INSERT INTO server_usage_group VALUES(2,'students');
CREATE INDEX ix_server_usage_user ON server_usage (user);
CREATE INDEX ix_server_usage_user_started ON server_usage (user, started_at);
CREATE INDEX ix_server_usage_stopped_at ON server_usage (stopped_at);
CREATE INDEX ix_server_usage_group_name ON server_usage_group (name);
COMMIT;
