import { errors, type ApiPart, type Obj } from './common.ts';

/**
 * GET /admin (the admin dashboard, docs/admin.md) and its files: guarded by `admin.allow` only — the
 * page holds no secret and asks for the admin key itself. Served by src/http/admin-page.ts.
 */

const header = (description: string): Obj => ({ description, schema: { type: 'string' } });
const fileHeaders = (cacheControl: string): Record<string, Obj> => ({
  ETag: header('Strong entity tag of this representation (the gzipped one has its own).'),
  'Cache-Control': header(cacheControl),
  'Content-Security-Policy': header("Only this origin's files and API: no inline script or style, no other origin."),
});
const notModified: Obj = {
  description: 'Not modified: `If-None-Match` names the current `ETag`. No body.',
  headers: { ETag: header('The current entity tag.') },
};
const ifNoneMatch: Obj = { name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } };
const guard = {
  ip_not_allowed: 'the source address is not in `admin.allow` (default loopback only)',
  unavailable: 'the dashboard is not built in this installation (`npm run build`)',
};

export const dashboardApi: ApiPart = {
  paths: {
    '/admin': {
      get: {
        tags: ['files'],
        operationId: 'adminDashboard',
        summary: 'The admin dashboard',
        description:
          'A page that signs in with an admin key (kept in the tab’s session storage) and shows the node live through `/admin/api` (docs/admin.md). ' +
          'Only for addresses in `admin.allow`; with `admin.listen`, only on the admin listener (404 on the main one). Revalidated on every load (`no-cache`, 304 by ETag).',
        security: [],
        parameters: [ifNoneMatch],
        responses: {
          '200': {
            description: 'The page.',
            headers: fileHeaders('`no-cache`'),
            content: { 'text/html': { schema: { type: 'string' } } },
          },
          '304': notModified,
          ...errors(guard),
        },
      },
    },
    '/admin/assets/{file}': {
      get: {
        tags: ['files'],
        operationId: 'adminDashboardAsset',
        summary: 'A file of the admin dashboard',
        description:
          'The script, style sheet and icon the page names. Their names carry a hash of their content, so they are cached for a year (`immutable`). Only for addresses in `admin.allow`.',
        security: [],
        parameters: [
          { name: 'file', in: 'path', required: true, schema: { type: 'string' }, description: 'A file name as the page gives it.' },
          ifNoneMatch,
        ],
        responses: {
          '200': {
            description: 'The file.',
            headers: fileHeaders('`public, max-age=31536000, immutable`'),
            content: {
              'text/javascript': { schema: { type: 'string' } },
              'text/css': { schema: { type: 'string' } },
              'image/svg+xml': { schema: { type: 'string' } },
            },
          },
          '304': notModified,
          ...errors({ ...guard, not_found: 'no such file of the dashboard' }),
        },
      },
    },
  },
};
