// Settings shared by the specs, from the environment (checked in playwright.config.ts).
export const BASE_URL = (process.env.BASE_URL ?? '').trim().replace(/\/+$/, '');
export const ADMIN_EMAIL = process.env.ADMIN_EMAIL || 'ada@example.com';
export const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || 'correct horse battery';
