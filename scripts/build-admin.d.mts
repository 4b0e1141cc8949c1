/** Types of scripts/build-admin.mjs (the tests build the dashboard with it). */
export declare const ADMIN_PAGE_DIR: string;
export declare const ADMIN_BUDGET_GZIP_BYTES: number;
export declare function buildAdminPage(outdir?: string): Promise<{ file: string; bytes: number; gzip: number }[]>;
