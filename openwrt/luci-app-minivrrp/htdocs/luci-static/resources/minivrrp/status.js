'use strict';
'require baseclass';
'require rpc';

// What Status > VRRP and the Overview include share: the status call and the tables drawn
// from `ubus call minivrrp status` (the daemon's JSON status, README "JSON status").

const callStatus = rpc.declare({ object: 'minivrrp', method: 'status', expect: { '': {} } });

function ms(v) {
	if (v == null)
		return '-';
	const s = Math.floor(v / 1000);
	if (s < 60)
		return '%ds'.format(s);
	if (s < 3600)
		return '%dm %ds'.format(Math.floor(s / 60), s % 60);
	if (s < 86400)
		return '%dh %dm'.format(Math.floor(s / 3600), Math.floor(s % 3600 / 60));
	return '%dd %dh'.format(Math.floor(s / 86400), Math.floor(s % 86400 / 3600));
}

const stateColor = { MASTER: '#2a2', BACKUP: '#27c', FAULT: '#c22', INIT: '#888' };

function stateBadge(state) {
	return E('span', {
		'class': 'minivrrp-state',
		'style': 'color:#fff;padding:1px 6px;border-radius:3px;background:' + (stateColor[state] || '#888')
	}, state || '?');
}

function prioCell(i) {
	const parts = [ E('strong', { 'class': 'minivrrp-prio' }, String(i.effective_priority)) ];
	let base = _('base %d').format(i.base_priority);
	if (i.priority_override != null)
		base += ', ' + _('override %d').format(i.priority_override);
	parts.push(E('div', { 'style': 'font-size:90%' }, base));
	(i.trackers || []).forEach(t => {
		const c = t.fault ? _('FAULT') : ((t.contribution > 0 ? '+' : '') + t.contribution);
		parts.push(E('div', { 'class': 'minivrrp-tracker', 'style': 'font-size:90%' },
			'%s %s (%s): %s'.format(t.kind, t.name, t.state, c)));
	});
	return E('div', {}, parts);
}

function stateCell(i) {
	return E('div', {}, [
		stateBadge(i.state),
		E('div', { 'style': 'font-size:90%' }, _('%s ago').format(ms(i.since_ms))),
		E('div', { 'class': 'minivrrp-reason', 'style': 'font-size:90%' }, i.reason || '')
	]);
}

function vipCell(i) {
	return E('div', {}, [
		E('div', { 'class': 'minivrrp-vips' }, (i.vips || []).join(', ')),
		E('div', { 'style': 'font-size:90%' },
			i.pre_master_running ? _('held: pre_master running') :
			(i.vips_installed ? _('installed') : _('not installed')))
	]);
}

function countersCell(i) {
	const c = i.counters || {};
	return E('div', { 'style': 'font-size:90%' }, [
		E('div', {}, _('adverts sent %d, received %d, discarded %d').format(c.adverts_sent || 0, c.adverts_received || 0, c.adverts_discarded || 0)),
		E('div', {}, _('priority 0 sent %d, received %d; transitions %d').format(c.priority_zero_sent || 0, c.priority_zero_received || 0, c.transitions || 0))
	]);
}

function table(titles, rows, empty) {
	const t = E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(h => E('th', { 'class': 'th' }, h)))
	]);
	if (!rows.length)
		t.appendChild(E('tr', { 'class': 'tr placeholder' },
			E('td', { 'class': 'td', 'colspan': titles.length }, E('em', {}, empty))));
	rows.forEach(r => t.appendChild(E('tr', { 'class': 'tr', 'data-instance': r.name || null },
		r.cells.map((c, n) => E('td', { 'class': 'td', 'data-title': titles[n] }, c)))));
	return t;
}

return baseclass.extend({
	callStatus: callStatus,
	ms: ms,

	// Instances; `actions(i)` adds a last column (the status page's buttons).
	instances(st, actions) {
		const titles = [ _('Instance'), _('State'), _('Master'), _('Priority'), _('Virtual IPs'), _('Counters') ];
		if (actions)
			titles.push(_('Actions'));
		return table(titles, (st.instances || []).map(i => {
			const cells = [
				E('div', {}, [ E('strong', {}, i.name), E('div', { 'style': 'font-size:90%' },
					_('%s, VRID %d, v%d').format(i.interface, i.vrid, i.version)) ]),
				stateCell(i),
				E('span', { 'class': 'minivrrp-master' }, i.master || '-'),
				prioCell(i),
				vipCell(i),
				countersCell(i)
			];
			if (actions)
				cells.push(actions(i));
			return { name: i.name, cells: cells };
		}), _('No instances'));
	},

	checks(st) {
		return table([ _('Check'), _('Kind'), _('State'), _('Last result'), _('Latency'), _('Last run') ],
			(st.checks || []).map(c => ({ cells: [
				c.name, c.kind, c.state, c.last_result || '-',
				c.latency_us != null ? '%.1f ms'.format(c.latency_us / 1000) : '-',
				c.last_ms_ago != null ? _('%s ago').format(ms(c.last_ms_ago)) : '-'
			] })), _('No checks'));
	},

	virtualServers(st) {
		return table([ _('Virtual server'), _('Service'), _('Quorum'), _('Real servers') ],
			(st.virtual_servers || []).map(v => ({ cells: [
				v.name, v.service, v.up ? _('up') : _('down'),
				E('div', {}, (v.real_servers || []).map(r => E('div', {},
					'%s weight %d %s%s'.format(r.address, r.weight, r.up ? _('up') : _('down'),
						r.in_kernel ? '' : ' ' + _('(not in kernel)')))))
			] })), _('No virtual servers'));
	},

	daemon(st) {
		return E('p', { 'class': 'minivrrp-daemon' }, [
			_('minivrrp %s, router %s, pid %d, up %s').format(st.version, st.router_id, st.pid, ms(st.uptime_ms)),
			' ',
			st.maintenance ? E('strong', { 'class': 'minivrrp-maintenance', 'style': 'color:#c60' },
				_('Maintenance mode: every instance stays BACKUP')) : ''
		]);
	}
});
