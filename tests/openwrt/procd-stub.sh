# tests/openwrt/procd-stub.sh - a recording stand-in for procd's shell API
# (/lib/functions/procd.sh). Each call appends one line to $PROCD_RECORD instead of
# building JSON and talking to procd over ubus, so a test can read back exactly what an
# init script asked procd to do. procd itself (supervision, respawn, file hashing,
# signal delivery) is NOT exercised by this.

: "${PROCD_RECORD:?PROCD_RECORD must name the record file}"

_procd_record() {
	printf '%s\n' "$*" >>"$PROCD_RECORD"
}

procd_lock() { _procd_record "lock"; }
procd_open_service() { _procd_record "open_service $*"; }
procd_close_service() { _procd_record "close_service"; }
procd_open_instance() { _procd_record "open_instance $*"; }
procd_close_instance() { _procd_record "close_instance"; }
procd_set_param() { _procd_record "set_param $*"; }
procd_append_param() { _procd_record "append_param $*"; }
procd_add_reload_trigger() { _procd_record "add_reload_trigger $*"; }
procd_add_interface_trigger() { _procd_record "add_interface_trigger $*"; }
procd_add_raw_trigger() { _procd_record "add_raw_trigger $*"; }
procd_open_trigger() { _procd_record "open_trigger"; }
procd_close_trigger() { _procd_record "close_trigger"; }
procd_add_validation() { _procd_record "add_validation $*"; }
procd_send_signal() { _procd_record "send_signal $*"; }
procd_kill() { _procd_record "kill $*"; }

# Whether the service has a running instance: the test decides via PROCD_RUNNING=1.
procd_running() {
	_procd_record "running? $*"
	[ "${PROCD_RUNNING:-0}" = 1 ]
}
