/** What the datasets catalogue answers (through this server's handlers), and what a view may ask of the panel. */

export interface IDatasetSummary {
  name: string;
  title: string;
  description: string;
  tags: string[];
  format: string;
  rows: number | null;
  size_bytes: number | null;
  version: string;
  steward: string;
}

/** A dataset the member may request: metadata only, with their latest request for it. */
export interface IRequestable extends IDatasetSummary {
  licence: string | null;
  terms: string | null;
  deidentification: { method?: string; date?: string };
  request: { id: number; status: string; comment: string | null } | null;
}

/** One page of a list (the catalogue's ?limit=&cursor=). */
export interface IPage<T> {
  items: T[];
  next_cursor: string | null;
}

export interface IColumn {
  name: string;
  type: string;
}

export interface IFile {
  path: string;
  format: string;
  rows: number | null;
  size_bytes: number | null;
  columns?: IColumn[];
}

/** Whether this server can read a granted dataset now (false: it needs a restart to mount it). */
export interface IAccess {
  name: string;
  path: string;
  readable: boolean;
}

/** The panel and the main-area views, as the views see them: where a link or a button leads. */
export interface IDatasetsNavigator {
  showList(): Promise<void>;
  openDataset(name: string): void;
  openRequestable(entry: IRequestable): void;
  requestAccess(name: string): Promise<void>;
  insertIntoNotebook(code: string): Promise<void>;
}
