'use strict';
'require view';
'require rpc';
'require poll';
'require ui';
'require minivrrp.status as vrrp';

// Status > VRRP: the daemon's state, polled, with its controls. A session whose ACL grants
// only reading sees the buttons disabled (and rpcd refuses the calls anyway).

const callMaintenanceOn = rpc.declare({ object: 'minivrrp', method: 'maintenance_on', expect: { '': {} } });
const callMaintenanceOff = rpc.declare({ object: 'minivrrp', method: 'maintenance_off', expect: { '': {} } });
const callPriority = rpc.declare({ object: 'minivrrp', method: 'priority', params: [ 'name', 'priority' ], expect: { '': {} } });
const callPriorityReset = rpc.declare({ object: 'minivrrp', method: 'priority_reset', params: [ 'name' ], expect: { '': {} } });
const callGarp = rpc.declare({ object: 'minivrrp', method: 'garp', params: [ 'name' ], expect: { '': {} } });
const callReload = rpc.declare({ object: 'minivrrp', method: 'reload', expect: { '': {} } });
const callAccess = rpc.declare({ object: 'session', method: 'access', params: [ 'scope', 'object', 'function' ], expect: { 'access': false } });

return view.extend({
	load() {
		return Promise.all([
			L.resolveDefault(vrrp.callStatus(), {}),
			L.resolveDefault(callAccess('ubus', 'minivrrp', 'maintenance_on'), false)
		]);
	},

	// A control's answer: a notice, with the daemon's `FILE:LINE` errors when it refused.
	report(title, res) {
		document.querySelectorAll('.minivrrp-result').forEach(n => n.closest('.alert-message') ? n.closest('.alert-message').remove() : n.remove());
		if (res && res.ok) {
			ui.addNotification(null, E('p', { 'class': 'minivrrp-result' }, '%s: %s'.format(title, res.message || _('done'))), 'info');
		}
		else {
			const errors = (res && Array.isArray(res.errors)) ? res.errors : [];
			ui.addNotification(_('%s refused').format(title), E('div', { 'class': 'minivrrp-result' }, [
				E('p', {}, (res && res.message) ? (errors.length ? '' : res.message) : _('no answer')),
				errors.length ? E('ul', {}, errors.map(e => E('li', {}, '%s:%d: %s%s'.format(e.file, e.line,
					e.section ? e.section + '.' + e.option + ': ' : '', e.message)))) : ''
			]), 'danger');
		}
		return this.refresh();
	},

	call(title, fn) {
		return fn().then(res => this.report(title, res), err => this.report(title, { ok: false, message: err.message || String(err) }));
	},

	actions(i) {
		const ro = !this.canWrite;
		const input = E('input', {
			'class': 'cbi-input-text minivrrp-prio-input', 'type': 'number', 'min': 1, 'max': 255,
			'style': 'width:5em', 'placeholder': String(i.base_priority), 'disabled': ro || null,
			'data-instance': i.name
		});
		return E('div', {}, [
			input, ' ',
			E('button', {
				'class': 'btn cbi-button cbi-button-apply minivrrp-prio-set', 'disabled': ro || null,
				'click': ui.createHandlerFn(this, () => this.call(_('Priority of %s').format(i.name), () => callPriority(i.name, +input.value)))
			}, _('Set priority')), ' ',
			E('button', {
				'class': 'btn cbi-button minivrrp-prio-reset', 'disabled': ro || null,
				'click': ui.createHandlerFn(this, () => this.call(_('Priority of %s').format(i.name), () => callPriorityReset(i.name)))
			}, _('Reset')), ' ',
			E('button', {
				'class': 'btn cbi-button minivrrp-garp', 'disabled': ro || null,
				'click': ui.createHandlerFn(this, () => this.call(_('GARP for %s').format(i.name), () => callGarp(i.name)))
			}, _('Send GARP'))
		]);
	},

	renderStatus(st) {
		if (!st || !Array.isArray(st.instances))
			return E('div', { 'class': 'alert-message warning minivrrp-down' },
				(st && st.message) ? st.message : _('minivrrp is not running'));
		const ro = !this.canWrite;
		return E('div', {}, [
			vrrp.daemon(st),
			E('div', { 'class': 'cbi-section-actions', 'style': 'margin-bottom:1em' }, [
				E('button', {
					'class': 'btn cbi-button cbi-button-negative minivrrp-maint-on', 'disabled': ro || st.maintenance || null,
					'click': ui.createHandlerFn(this, () => this.call(_('Maintenance'), callMaintenanceOn))
				}, _('Maintenance on')), ' ',
				E('button', {
					'class': 'btn cbi-button cbi-button-positive minivrrp-maint-off', 'disabled': ro || !st.maintenance || null,
					'click': ui.createHandlerFn(this, () => this.call(_('Maintenance'), callMaintenanceOff))
				}, _('Maintenance off')), ' ',
				E('button', {
					'class': 'btn cbi-button cbi-button-action minivrrp-reload', 'disabled': ro || null,
					'click': ui.createHandlerFn(this, () => this.call(_('Reload'), callReload))
				}, _('Reload configuration')),
				ro ? E('em', { 'class': 'minivrrp-readonly' }, ' ' + _('(read-only access: controls disabled)')) : ''
			]),
			E('h3', {}, _('Instances')),
			vrrp.instances(st, i => this.actions(i)),
			E('h3', {}, _('Checks')),
			vrrp.checks(st),
			E('h3', {}, _('Virtual servers')),
			vrrp.virtualServers(st)
		]);
	},

	refresh() {
		return L.resolveDefault(vrrp.callStatus(), {}).then(st => {
			const box = document.getElementById('minivrrp-status');
			// Keep a priority being typed: redraw only when no input has focus.
			if (box && !(document.activeElement && document.activeElement.classList.contains('minivrrp-prio-input')))
				box.replaceChildren(this.renderStatus(st));
		});
	},

	render(data) {
		this.canWrite = !!data[1];
		poll.add(() => this.refresh(), 2);
		return E('div', {}, [
			E('h2', {}, _('VRRP')),
			E('div', { 'id': 'minivrrp-status' }, this.renderStatus(data[0]))
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
