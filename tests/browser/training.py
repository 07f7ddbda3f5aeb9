"""The console's training page in a real browser against `kefu up`: an
agent enrolled in a coming session takes the course's pre-test in the page
and sees the result; fields that take a staff id suggest the directory's
people.

Usage: training.py KEFU_BINARY
"""
import json, os, re, socket, subprocess, sys, tempfile, time, urllib.request
from playwright.sync_api import expect, sync_playwright

KEFU = sys.argv[1]
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
data = tempfile.mkdtemp()
http, grpc, adm = free(), free(), free()
log = open(os.path.join(data, "up.log"), "w+")
up = subprocess.Popen([KEFU, "up", "--data-dir", data, "--listen", f"127.0.0.1:{grpc}", "--http-listen", f"127.0.0.1:{http}", "--admin-listen", f"127.0.0.1:{adm}"], stdout=log, stderr=subprocess.STDOUT)
base = f"http://127.0.0.1:{http}"
try:
    for _ in range(200):
        log.seek(0)
        if "kefu ready" in log.read(): break
        time.sleep(0.2)
    def tok(role, sid):
        return subprocess.run([KEFU, "admin", "token", "--role", role, "--staff-id", sid, "--data-dir", data], capture_output=True, text=True, check=True).stdout.strip()
    def call(method, path, token, body=None):
        req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")
    admin = tok("admin", "smoke-admin")
    hr = tok("hr", "smoke-hr")
    call("POST", "/api/v1/staff/people", admin, {"person": {"staffId": "agent.zhao", "name": "赵敏", "position": "客服专员", "hireDate": "2025-03-01"}})
    subprocess.run([KEFU, "admin", "create-user", "--username", "agent.zhao", "--role", "agent", "--data-dir", data],
                   env={**os.environ, "KEFU_NEW_PASSWORD": "zhao min passphrase"}, check=True, capture_output=True)
    course = call("POST", "/api/v1/training/courses", hr, {"course": {"code": "VAT-101", "title": "增值税基础", "topic": "TOPIC_TAX_POLICY", "method": "METHOD_ONLINE", "hours": 2}})
    for i in range(2):
        call("POST", "/api/v1/training/questions", hr, {"question": {"kind": "QUESTION_KIND_SINGLE_CHOICE", "stem": f"小规模纳税人征收率（{i}）？", "options": ["3%", "13%"], "correct": [0], "points": 5, "tags": ["vat"]}})
    call("POST", "/api/v1/staff/people", admin, {"person": {"staffId": "li.trainer", "name": "李讲师", "position": "培训讲师", "hireDate": "2020-03-01"}})
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 86400))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 86400 + 7200))
    sess = call("POST", "/api/v1/training/sessions", hr, {"session": {"courseId": course["id"], "startTime": start, "endTime": end, "location": "三楼会议室", "trainer": "li.trainer", "capacity": 10}})
    call("POST", f"/api/v1/training/sessions/{sess['id']}/enrolments", hr, {"staffId": "agent.zhao"})
    exam = call("POST", "/api/v1/training/exams", hr, {"exam": {"courseId": course["id"], "title": "增值税基础测验", "pools": [{"tag": "vat", "count": 2}], "passMark": 60, "maxAttempts": 3, "timeLimitMinutes": 30, "preTest": True}})
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        page = b.new_page(viewport={"width": 1366, "height": 768})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/#/login")
        page.fill("#login-username", "agent.zhao"); page.fill("#login-password", "zhao min passphrase")
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#whoami")).to_contain_text("赵敏")
        page.click("#nav-training")
        page.get_by_role("button", name="开始考试").click()
        expect(page.locator("#exam-attempt fieldset")).to_have_count(2)
        for fs in page.locator("#exam-attempt fieldset").all():
            fs.get_by_label("3%", exact=True).check()
        page.locator("#exam-attempt").get_by_role("button", name="提交").click()
        expect(page.locator("#exam-attempt")).to_contain_text("通过", timeout=10000)
        expect(page.locator("#exam-attempt")).to_contain_text("得分 100.0")
        print("ok: the agent took the pre-test in the page: all right, passed", flush=True)
        n = page.evaluate("document.querySelectorAll('#dl-people option').length")
        assert n >= 1, f"no people suggested: {n}"
        page.click("#nav-queue")
        assert page.get_attribute("#bulk-assignee", "list") == "dl-people"
        print("ok: staff-id fields suggest the directory's people")
        assert not errors, errors
        print("console training test: all checks passed")
finally:
    up.terminate(); up.wait(10)
