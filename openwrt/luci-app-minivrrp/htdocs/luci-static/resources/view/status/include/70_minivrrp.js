'use strict';
'require baseclass';
'require minivrrp.status as vrrp';

// Status > Overview: every VRRP instance of minivrrp (the full page is Status > VRRP).
return baseclass.extend({
	title: _('VRRP'),

	load() {
		return L.resolveDefault(vrrp.callStatus(), {});
	},

	render(st) {
		if (!st || !Array.isArray(st.instances))
			return E('p', {}, E('em', {}, (st && st.message) ? st.message : _('minivrrp is not running')));
		return E([], [ vrrp.daemon(st), vrrp.instances(st, null) ]);
	}
});
