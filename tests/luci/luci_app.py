#!/usr/bin/python3
# Browser half of tests/lab/luci_browser.rs: drives luci-app-minivrrp in headless Chromium
# (Debian's chromium + chromium-driver + python3-selenium) against the kit's real LuCI, inside
# the kit's network namespace. Prints one "ok: STEP" or "FAIL: STEP" line per step; exit 0 when
# every step passed. The daemon's side is read with the shell commands given (they print
# `minivrrp status --json` of the router under test and of its peer, and the router's
# /etc/config/minivrrp).
import argparse, json, os, shlex, shutil, subprocess, sys, tempfile, time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ap = argparse.ArgumentParser()
ap.add_argument('--url', required=True)
ap.add_argument('--out', required=True)
ap.add_argument('--status-cmd', required=True)
ap.add_argument('--peer-cmd', required=True)
ap.add_argument('--config-cmd', required=True)
ap.add_argument('--sh-cmd', required=True, help='runs its argument with the router\'s shell')
ap.add_argument('--instance', default='lan')
ap.add_argument('--vip', required=True)
ap.add_argument('--password', default='minivrrp')
ap.add_argument('--ro-user', required=True)
ap.add_argument('--ro-password', required=True)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)

fails = []
def ok(msg): print('ok: ' + msg, flush=True)
def fail(msg):
    print('FAIL: ' + msg, flush=True)
    fails.append(msg)

def sh_json(cmd):
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {'error': out.stdout + out.stderr}

def router_sh(script):
    subprocess.run(a.sh_cmd + ' ' + shlex.quote(script), shell=True, check=True)

def inst(st):
    for i in st.get('instances', []):
        if i.get('name') == a.instance:
            return i
    return {}

def until(what, cond, timeout=15, step=0.3):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = cond()
            if last:
                return last
        except Exception as ex:  # a redraw between find and read
            last = ex
        time.sleep(step)
    raise AssertionError('%s: not within %ss (last: %r)' % (what, timeout, last))

profile = tempfile.mkdtemp(prefix='luci-app-chromium.')
opts = webdriver.ChromeOptions()
opts.binary_location = '/usr/bin/chromium'
for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
            '--window-size=1400,1200', '--no-first-run', '--no-default-browser-check',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--disable-extensions', '--user-data-dir=' + profile):
    opts.add_argument(arg)
drv = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
drv.set_script_timeout(20)

def shot(name):
    drv.save_screenshot(os.path.join(a.out, name))

def body():
    return drv.find_element(By.TAG_NAME, 'body').text

def login(user, password):
    drv.get(a.url + 'admin/logout')
    drv.delete_all_cookies()
    for attempt in range(3):
        drv.get(a.url)
        try:
            WebDriverWait(drv, 20).until(lambda d: [e for e in d.find_elements(By.NAME, 'luci_username') if e.is_displayed()])
            u = drv.find_element(By.NAME, 'luci_username')
            u.clear(); u.send_keys(user)
            drv.find_element(By.NAME, 'luci_password').send_keys(password)
            drv.find_element(By.CSS_SELECTOR, 'button.btn, input[type=submit]').click()
            WebDriverWait(drv, 30).until(lambda d: d.find_elements(By.ID, 'maincontent')
                                         and not d.find_elements(By.NAME, 'luci_password'))
            return
        except Exception as ex:
            print('  login attempt %d: %s' % (attempt + 1, str(ex).split('\n')[0]))
            shot('login-attempt-%d.png' % (attempt + 1))
    raise AssertionError('cannot log in as ' + user)

def row():
    return drv.find_element(By.CSS_SELECTOR, 'tr[data-instance="%s"]' % a.instance)

def page_state():
    return row().find_element(By.CSS_SELECTOR, '.minivrrp-state').text

def page_prio():
    return row().find_element(By.CSS_SELECTOR, '.minivrrp-prio').text

def click(css):
    el = until('button ' + css, lambda: [e for e in drv.find_elements(By.CSS_SELECTOR, css)
                                        if e.is_enabled()])
    el[0].click()

def step(name, fn):
    try:
        fn()
        ok(name)
    except Exception as ex:
        fail('%s: %s' % (name, ex))
        try:
            shot('FAIL-' + name.split(':')[0].replace(' ', '-') + '.png')
        except Exception:
            pass

def status_master():
    drv.get(a.url + 'admin/status/minivrrp')
    until('MASTER on the page', lambda: page_state() == 'MASTER', 30)
    vips = row().find_element(By.CSS_SELECTOR, '.minivrrp-vips').text
    assert a.vip in vips, vips
    peer = inst(sh_json(a.peer_cmd))
    assert peer.get('state') == 'BACKUP', peer
    shot('luci-vrrp-status.png')

def maintenance():
    click('.minivrrp-maint-on')
    until('BACKUP on the page', lambda: page_state() == 'BACKUP', 10)
    until('peer MASTER', lambda: inst(sh_json(a.peer_cmd)).get('state') == 'MASTER', 10)
    assert 'Maintenance mode' in body()
    shot('luci-vrrp-maintenance.png')
    click('.minivrrp-maint-off')
    until('MASTER again', lambda: page_state() == 'MASTER', 15)

def priority():
    inp = row().find_element(By.CSS_SELECTOR, '.minivrrp-prio-input')
    inp.send_keys('201')
    row().find_element(By.CSS_SELECTOR, '.minivrrp-prio-set').click()
    until('effective 201 on the page', lambda: page_prio() == '201', 10)
    st = inst(sh_json(a.status_cmd))
    assert st.get('priority_override') == 201 and st.get('effective_priority') == 201, st
    assert 'override 201' in row().text
    shot('luci-vrrp-priority.png')
    # The page alone, for the README.
    drv.find_element(By.ID, 'maincontent').screenshot(os.path.join(a.out, 'luci-vrrp-status-page.png'))
    click('tr[data-instance="%s"] .minivrrp-prio-reset' % a.instance)
    until('override reset', lambda: inst(sh_json(a.status_cmd)).get('priority_override', 0) is None, 10)

def overview():
    drv.get(a.url + 'admin/status/overview')
    until('VRRP include with the instance MASTER', lambda: page_state() == 'MASTER', 30)
    drv.execute_script("document.querySelector('tr[data-instance]').scrollIntoView()")
    time.sleep(1.5)
    shot('luci-overview.png')

def config_page():
    drv.get(a.url + 'admin/services/minivrrp/instance')
    until('no modal', lambda: not [m for m in drv.find_elements(By.CSS_SELECTOR, '#modal_overlay') if m.is_displayed()], 30)
    return until('priority field', lambda: [e for e in drv.find_elements(By.ID, 'widget.cbid.minivrrp.%s.priority' % a.instance) if e.is_displayed()], 30)[0]

def save_apply():
    btn = until('Save & Apply', lambda: [b for b in drv.find_elements(By.CSS_SELECTOR, '.cbi-page-actions .cbi-button-apply') if b.is_displayed()])
    btn[0].click()

def config_apply():
    before = sh_json(a.status_cmd)
    pid = before.get('pid')
    assert pid, before
    field = config_page()
    shot('luci-vrrp-config.png')
    field.clear(); field.send_keys('160')
    save_apply()
    st = until('base priority 160 after apply',
               lambda: (lambda s: s if inst(s).get('base_priority') == 160 else None)(sh_json(a.status_cmd)), 40)
    assert st.get('pid') == pid, 'reloaded in place? pid %s -> %s' % (pid, st.get('pid'))
    # LuCI confirms the apply (else rpcd rolls it back): wait for its notice to go.
    until('apply confirmed', lambda: not [e for e in drv.find_elements(By.CSS_SELECTOR, '.spinning, #modal_overlay, .uci-change-legend') if e.is_displayed()], 40)
    time.sleep(1)
    cfg = subprocess.run(a.config_cmd, shell=True, capture_output=True, text=True).stdout
    assert "option priority '160'" in cfg, cfg
    shot('luci-vrrp-applied.png')
    print('  pid %s kept, base_priority 160' % pid)

def config_invalid():
    cfg_before = subprocess.run(a.config_cmd, shell=True, capture_output=True, text=True).stdout
    pid = sh_json(a.status_cmd).get('pid')
    config_page()
    adv = drv.find_element(By.ID, 'widget.cbid.minivrrp.%s.advert_int' % a.instance)
    drv.execute_script("arguments[0].scrollIntoView({block:'center'})", adv)
    adv.clear(); adv.send_keys('0.5')
    save_apply()
    # The notice at the top names section.option; the line under the field gives the reason.
    def errors():
        t = ' | '.join(e.text for e in drv.find_elements(By.CSS_SELECTOR, '.minivrrp-check-error') if e.text)
        return t if '%s.advert_int' % a.instance in t and 'whole seconds' in t else None
    text = until('the daemon\'s error on the form', errors, 20)
    # ...and under the option itself
    row_el = drv.find_element(By.ID, 'cbi-minivrrp-%s-advert_int' % a.instance)
    assert row_el.find_elements(By.CSS_SELECTOR, '.minivrrp-check-error'), row_el.text
    drv.execute_script("arguments[0].scrollIntoView({block:'center'})", row_el)
    shot('luci-vrrp-invalid.png')
    row_el.screenshot(os.path.join(a.out, 'luci-vrrp-invalid-option.png'))
    print('  form says: ' + text)
    time.sleep(2)
    cfg_after = subprocess.run(a.config_cmd, shell=True, capture_output=True, text=True).stdout
    assert cfg_after == cfg_before, 'config changed:\n' + cfg_after
    st = sh_json(a.status_cmd)
    assert st.get('pid') == pid and inst(st).get('advert_int_ms') == 1000, st

def garp_and_refused_reload():
    drv.get(a.url + 'admin/status/minivrrp')
    until('status page', lambda: page_state() == 'MASTER', 30)
    click('tr[data-instance="%s"] .minivrrp-garp' % a.instance)
    until('GARP notice', lambda: 'GARP for %s:' % a.instance in body(), 10)
    # A config broken behind LuCI's back: Reload shows the daemon's FILE:LINE errors.
    router_sh("cp /etc/config/minivrrp /tmp/good && sed -i \"s/option vrid .*/option vrid '300'/\" /etc/config/minivrrp")
    try:
        click('.minivrrp-reload')
        err = until('refusal with FILE:LINE', lambda: [e.text for e in drv.find_elements(By.CSS_SELECTOR, '.minivrrp-result') if '/etc/config/minivrrp:' in e.text], 10)
        assert 'vrid' in err[0] and '300' in err[0], err
        print('  reload refused: ' + err[0].replace('\n', ' | '))
        shot('luci-vrrp-reload-refused.png')
        assert inst(sh_json(a.status_cmd)).get('state') == 'MASTER'
    finally:
        router_sh('cp /tmp/good /etc/config/minivrrp')

def readonly():
    login(a.ro_user, a.ro_password)
    drv.get(a.url + 'admin/status/minivrrp')
    until('status for the reader', lambda: page_state() == 'MASTER', 30)
    btns = drv.find_elements(By.CSS_SELECTOR, '.minivrrp-maint-on, .minivrrp-prio-set, .minivrrp-garp, .minivrrp-reload')
    assert btns and all(not b.is_enabled() for b in btns), [b.is_enabled() for b in btns]
    shot('luci-vrrp-readonly.png')
    # The buttons are only disabled in the page; rpcd itself refuses the call.
    res = drv.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(L.env.ubuspath || '/ubus', { method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'call',
                params: [ L.env.sessionid, 'minivrrp', 'maintenance_on', {} ] }) })
        .then(r => r.json()).then(done, e => done({ fetch_error: String(e) }));
    """)
    print('  reader calls maintenance_on: %s' % json.dumps(res))
    denied = ('error' in res and 'denied' in json.dumps(res['error']).lower()) or \
             (isinstance(res.get('result'), list) and res['result'][:1] == [6])
    assert denied, res
    assert sh_json(a.status_cmd).get('maintenance') is False

try:
    step('login as root', lambda: login('root', a.password))
    step('status page: MASTER with the VIP, peer BACKUP', status_master)
    step('maintenance on: BACKUP, peer MASTER; off: MASTER again', maintenance)
    step('priority override 201 shown as effective priority, reset', priority)
    step('overview include shows the instance', overview)
    step('config page: priority 160, Save & Apply, reloaded in place', config_apply)
    step('config page: advert_int 0.5 on VRRPv2 refused by the daemon on the form, nothing applied', config_invalid)
    step('GARP; Reload refused with the daemon\'s FILE:LINE errors', garp_and_refused_reload)
    step('read-only user: status shown, controls disabled, rpcd refuses', readonly)
finally:
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)

print('luci-app: %s' % ('PASS' if not fails else 'FAIL (%d)' % len(fails)))
sys.exit(1 if fails else 0)
