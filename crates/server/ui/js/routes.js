// Every page: its hash path, its title key, and the function that builds it.

import * as admin from './pages/admin.js';
import * as audience from './pages/audience.js';
import * as campaigns from './pages/campaigns.js';
import * as dashboard from './pages/dashboard.js';
import * as delivery from './pages/delivery.js';
import * as infra from './pages/infra.js';
import * as system from './pages/system.js';
import * as templates from './pages/templates.js';

export const routes = [
  { path: '/', title: 'dashboard', page: dashboard.page },
  { path: '/tenants', title: 'tenants', page: admin.tenants },
  { path: '/tenants/:id', title: 'tenant', page: admin.tenant },
  { path: '/users', title: 'users', page: admin.users },
  { path: '/api-keys', title: 'api_keys', page: admin.apiKeys },
  { path: '/ips', title: 'ips', page: infra.ips },
  { path: '/ips/:id', title: 'ip', page: infra.ip },
  { path: '/warmup', title: 'warmup', page: infra.warmup },
  { path: '/pools', title: 'pools', page: infra.pools },
  { path: '/domains', title: 'domains', page: infra.domains },
  { path: '/domains/:id', title: 'domain', page: infra.domain },
  { path: '/blacklists', title: 'blacklists', page: infra.blacklists },
  { path: '/contacts', title: 'contacts', page: audience.contacts },
  { path: '/contacts/:id', title: 'contact', page: audience.contact },
  { path: '/imports', title: 'imports', page: audience.imports },
  { path: '/segments', title: 'segments', page: audience.segments },
  { path: '/tags', title: 'tags', page: audience.tags },
  { path: '/segments/:id', title: 'segment', page: audience.segment },
  { path: '/suppressions', title: 'suppressions', page: audience.suppressions },
  { path: '/templates', title: 'templates', page: templates.list },
  { path: '/templates/:id', title: 'template', page: templates.editor },
  { path: '/campaigns', title: 'campaigns', page: campaigns.list },
  { path: '/campaigns/new', title: 'new_campaign', page: campaigns.create },
  { path: '/campaigns/:id', title: 'campaign', page: campaigns.detail },
  { path: '/messages', title: 'messages', page: delivery.messages },
  { path: '/messages/:id', title: 'message', page: delivery.message },
  { path: '/bounces', title: 'bounces', page: delivery.bounces },
  { path: '/forwards', title: 'forwards', page: delivery.forwards },
  { path: '/reports', title: 'reports', page: delivery.reports },
  { path: '/compliance', title: 'compliance', page: delivery.compliance },
  { path: '/shaping', title: 'shaping', page: delivery.shaping },
  { path: '/jobs', title: 'jobs', page: system.jobs },
  { path: '/audit', title: 'audit', page: system.audit },
  { path: '/settings', title: 'settings', page: system.settings },
];

export const menu = [
  { label: 'menu_overview', items: [{ path: '/', label: 'dashboard' }] },
  { label: 'menu_sending', items: [
    { path: '/ips', label: 'ips' }, { path: '/warmup', label: 'warmup' }, { path: '/pools', label: 'pools' },
    { path: '/domains', label: 'domains' }, { path: '/blacklists', label: 'blacklists' }] },
  { label: 'menu_audience', items: [
    { path: '/contacts', label: 'contacts' }, { path: '/imports', label: 'imports' },
    { path: '/segments', label: 'segments' }, { path: '/tags', label: 'tags' }, { path: '/suppressions', label: 'suppressions' }] },
  { label: 'menu_content', items: [{ path: '/templates', label: 'templates' }, { path: '/campaigns', label: 'campaigns' }] },
  { label: 'menu_delivery', items: [
    { path: '/messages', label: 'messages' }, { path: '/bounces', label: 'bounces' },
    { path: '/forwards', label: 'forwards' }, { path: '/shaping', label: 'shaping' }, { path: '/reports', label: 'reports' },
    { path: '/compliance', label: 'compliance' }] },
  { label: 'menu_admin', items: [
    { path: '/tenants', label: 'tenants', admin: true }, { path: '/users', label: 'users', admin: true },
    { path: '/api-keys', label: 'api_keys' }, { path: '/jobs', label: 'jobs', admin: true },
    { path: '/audit', label: 'audit', admin: true }, { path: '/settings', label: 'settings' }] },
];
