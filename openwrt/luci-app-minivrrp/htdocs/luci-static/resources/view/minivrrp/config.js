'use strict';
'require view';
'require form';
'require uci';
'require rpc';
'require ui';
'require network';
'require minivrrp.schema as schema';

// Services > VRRP: one page per section type of /etc/config/minivrrp. Every option, its
// type, range, default and help come from minivrrp.schema, which a test regenerates from
// the daemon's schema table; this file names no option itself. Before Save & Apply the
// staged config goes through the daemon's own parser (`minivrrp check`, rpcd method
// `check`): its errors are shown on the form and nothing is applied.

const callCheck = rpc.declare({
	object: 'minivrrp',
	method: 'check',
	expect: { '': {} }
});

// The schema's help is Markdown-ish text: escape it, then `code` spans.
function helpHtml(text) {
	const esc = String(text || '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
	return esc.replace(/`([^`]+)`/g, '<code>$1</code>');
}

function describe(o) {
	let facts = [ _('Type: %s').format(o.type) ];
	if (o.required)
		facts.push(_('required'));
	else if (o.default != null)
		facts.push(_('default: %s').format(o.default));
	else if (o.derived != null)
		facts.push(_('default: %s').format(o.derived));
	return helpHtml(o.help) + '<br /><small>' + helpHtml(facts.join('; ')) + '</small>';
}

function sectionNames(stype) {
	return uci.sections('minivrrp', stype).map(s => s['.name']).filter(n => n && !n.match(/^cfg[0-9a-f]{6}$/));
}

return view.extend({
	load() {
		return Promise.all([
			uci.load('minivrrp'),
			L.resolveDefault(network.getDevices(), [])
		]);
	},

	sectionType() {
		const path = L.env.dispatchpath || [];
		for (let i = path.length - 1; i >= 0; i--) {
			const spec = schema.sections.filter(s => s.type == path[i])[0];
			if (spec)
				return spec;
		}
		return schema.sections.filter(s => s.type == 'instance')[0];
	},

	addOption(s, o, devices) {
		const cls = o.list ? form.DynamicList : form.Value;
		let w;

		if (o.kind == 'bool' && !o.list) {
			w = s.option(form.Flag, o.name, o.name);
			w.enabled = '1';
			w.disabled = '0';
			w.default = (o.default != null) ? o.default : '0';
		}
		else if ((o.kind == 'enum' || (o.kind == 'ref' && o.picks)) && !o.list) {
			w = s.option(form.ListValue, o.name, o.name);
			if (!o.required)
				w.value('', (o.default != null) ? _('(default: %s)').format(o.default) :
					(o.derived != null ? _('(default: %s)').format(o.derived) : _('(none)')));
			const values = (o.kind == 'enum') ? o.values : sectionNames(o.ref);
			values.forEach(v => w.value(v));
		}
		else {
			w = s.option(cls, o.name, o.name);
			if (o.picks == 'device')
				devices.forEach(d => w.value(d.getName()));
			else if (o.picks)
				sectionNames(o.picks).forEach(n => w.value(n));
			if (o.datatype)
				w.datatype = o.datatype;
			if (o.default != null)
				w.placeholder = o.default;
			else if (o.derived != null && o.derived.length < 40)
				w.placeholder = o.derived.replace(/`/g, '');
		}

		w.description = describe(o);
		// Unset options stay unset (the daemon applies its default), so the file holds only
		// what the user wrote.
		w.rmempty = !o.required;
		w.optional = false;
		return w;
	},

	render(data) {
		const devices = data[1] || [];
		const spec = this.sectionType();
		const m = new form.Map('minivrrp', _('VRRP: %s').format(spec.type), helpHtml(spec.help));
		let s;

		if (spec.fixed_name) {
			s = m.section(form.NamedSection, spec.fixed_name, spec.type);
		}
		else {
			s = m.section(form.TypedSection, spec.type);
			s.anonymous = false;
		}
		s.addremove = true;

		spec.options.forEach(o => this.addOption(s, o, devices));

		this.map = m;
		return m.render();
	},

	// The staged config (this session's unsaved uci changes) through `minivrrp check`: every
	// error at the top of the form and under the option it names.
	checkStaged() {
		return callCheck().then(res => {
			document.querySelectorAll('.minivrrp-check-error').forEach(n => n.remove());
			if (!res || res.ok)
				return true;

			const errors = Array.isArray(res.errors) ? res.errors : [];
			const lines = errors.length
				? errors.map(e => (e.section ? '%s.%s: %s'.format(e.section, e.option, e.message) : e.message))
				: [ res.message || _('minivrrp check failed') ];

			ui.addNotification(_('The daemon refuses this configuration; nothing was applied'),
				E('ul', { 'class': 'minivrrp-check-error' }, lines.map(l => E('li', {}, l))), 'danger');

			errors.forEach(e => {
				let sid = e.section;
				const anon = (sid || '').match(/^@([a-z_]+)\[(\d+)\]$/);
				if (anon) {
					const all = uci.sections('minivrrp', anon[1]);
					sid = all[+anon[2]] ? all[+anon[2]]['.name'] : null;
				}
				const row = sid ? document.getElementById('cbi-minivrrp-%s-%s'.format(sid, e.option)) : null;
				if (!row)
					return;
				row.classList.add('cbi-value-error');
				const field = row.querySelector('.cbi-value-field') || row;
				field.appendChild(E('div', {
					'class': 'cbi-value-description minivrrp-check-error',
					'style': 'color:#c00;font-weight:bold'
				}, e.message));
			});
			return false;
		}).catch(err => {
			ui.addNotification(null, E('p', { 'class': 'minivrrp-check-error' },
				_('Could not check the configuration: %s').format(err.message || err)), 'danger');
			return false;
		});
	},

	handleSave(ev) {
		return this.map.save().then(() => this.checkStaged());
	},

	handleSaveApply(ev, mode) {
		return this.map.save().then(() => this.checkStaged()).then(ok => {
			if (ok)
				ui.changes.apply(mode == '0');
		});
	}
});
