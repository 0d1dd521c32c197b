PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE dataset (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	title VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	steward VARCHAR(255) NOT NULL, 
	source_kind VARCHAR(16) NOT NULL, 
	path TEXT, 
	source_claim VARCHAR(255), 
	source_server VARCHAR(255), 
	source_path TEXT, 
	format VARCHAR(32) NOT NULL, 
	schema_json TEXT NOT NULL, 
	row_count INTEGER, 
	size_bytes INTEGER, 
	deid_method TEXT NOT NULL, 
	deid_date VARCHAR(32) NOT NULL, 
	deid_steward VARCHAR(255) NOT NULL, 
	licence VARCHAR(255) NOT NULL, 
	terms TEXT NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	tags_json TEXT NOT NULL, 
	quasi_identifiers_json TEXT NOT NULL, 
	min_k INTEGER, 
	status VARCHAR(16) NOT NULL, 
	scan_status VARCHAR(16) NOT NULL, 
	scan_json TEXT NOT NULL, 
	scanned_at FLOAT, 
	override_reason TEXT, 
	override_by VARCHAR(255), 
	override_at FLOAT, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO dataset VALUES(1,'chest-xray','Chest X-ray','','','local','/srv/data/chest-xray',NULL,NULL,NULL,'','[]',NULL,NULL,'','','','','','1','["imaging"]','[]',NULL,'draft','not-scanned','{}',NULL,NULL,NULL,NULL,1796168560.5096244811,1796168560.5096244811);
CREATE TABLE dataset_audit (
	id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	event VARCHAR(32) NOT NULL, 
	user VARCHAR(255) NOT NULL, 
	dataset VARCHAR(64), 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO dataset_audit VALUES(1,1796168560.5132138728,'add','steward','chest-xray','{"source": {"kind": "local", "path": "/srv/data/chest-xray"}}');
INSERT INTO dataset_audit VALUES(2,1796168560.5193445681,'grant','steward','chest-xray','{"expires_at": null, "group": "gpu-residents", "request": null}');
CREATE TABLE dataset_grant (
	id INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	principal VARCHAR(255) NOT NULL, 
	expires_at FLOAT, 
	granted_by VARCHAR(255) NOT NULL, 
	granted_at FLOAT NOT NULL, 
	request_id INTEGER, 
	PRIMARY KEY (id), 
	UNIQUE (dataset_id, kind, principal), 
	FOREIGN KEY(dataset_id) REFERENCES dataset (id) ON DELETE CASCADE
);
INSERT INTO dataset_grant VALUES(1,1,'group','gpu-residents',NULL,'steward',1796168560.5182125568,NULL);
CREATE TABLE dataset_request (
	id INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	user VARCHAR(255) NOT NULL, 
	purpose TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at FLOAT NOT NULL, 
	decided_at FLOAT, 
	decided_by VARCHAR(255), 
	comment TEXT, 
	expires_at FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(dataset_id) REFERENCES dataset (id) ON DELETE CASCADE
);
CREATE INDEX ix_dataset_status ON dataset (status);
CREATE INDEX ix_dataset_audit_at ON dataset_audit (at);
CREATE INDEX ix_dataset_audit_dataset ON dataset_audit (dataset);
CREATE INDEX ix_dataset_audit_user ON dataset_audit (user);
CREATE INDEX ix_dataset_audit_event ON dataset_audit (event);
CREATE INDEX ix_dataset_grant_principal ON dataset_grant (kind, principal);
CREATE INDEX ix_dataset_request_user ON dataset_request (user);
CREATE INDEX ix_dataset_request_dataset_id ON dataset_request (dataset_id);
CREATE INDEX ix_dataset_request_status ON dataset_request (status);
COMMIT;
