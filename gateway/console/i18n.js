// What the console says, in Simplified Chinese (default) and English; enum
// values from the one label table (/console/labels.json, proto/labels.tsv);
// times in the firm's zone (Beijing) with the zone shown; money in yuan.
export const ZONE = 'Asia/Shanghai';

const TEXT = {
  zh: {
    app: 'kefu 客服', lang: '语言', logout: '退出登录', zone: '北京时间', error: '出错', nothing: '暂无数据',
    loading: '加载中…', save: '保存', cancel: '取消', search: '搜索', refresh: '刷新', all: '全部', none: '无',
    yes: '是', no: '否', actions: '操作', details: '详情', created: '已创建', saved: '已保存', done: '已完成',
    username: '用户名', password: '密码', login: '登录', loginTitle: '登录 kefu 客服系统',
    wrongLogin: '用户名或密码错误', changePassword: '修改密码', currentPassword: '当前密码',
    newPassword: '新密码', newPassword2: '再次输入新密码', mismatch: '两次输入的新密码不一致',
    mustChange: '这是他人为你设置的初始密码，首次登录前请设置自己的密码（至少 10 个字符，不能是常见密码）。',
    passwordChanged: '密码已修改，请用新密码登录。',
    navMine: '我的工单', navQueue: '团队队列', navBoard: 'SLA 看板', navNew: '新建工单', navCustomers: '客户',
    navFollowUps: '回访 / 节日关怀', navComplaints: '投诉', navTraining: '培训', navPerformance: '绩效',
    navSettings: '设置', navAudit: '审计', navApi: 'API 参考', navPassword: '修改密码',
    number: '工单号', company: '公司', kind: '类型', channel: '渠道', subject: '主题', status: '状态',
    priority: '优先级', sla: 'SLA', due: '到期时间', progress: '进度', assignee: '处理人', queue: '队列',
    category: '分类', escalatedTo: '升级至', filingPeriod: '征期', text: '关键词', sortDue: '按到期时间排序',
    allOpen: '未解决（全部）', atRisk: '即将超时', breached: '已超时', paused: '已暂停', open: '处理中', unassigned: '未分配',
    filter: '筛选', bulkAssign: '批量分配给', assign: '分配', assigned: '已分配', select: '选择',
    selectRow: '选择工单', noneSelected: '请先勾选工单',
    reply: '回复', replyPublic: '公开回复（客户可见）', replyInternal: '内部备注', send: '发送',
    changeStatus: '变更状态', reason: '原因', apply: '确定', materials: '材料', steps: '办理步骤',
    timeline: '时间线', targets: 'SLA 目标', remaining: '剩余', metric: '指标', dueTime: '到期',
    feedback: '反馈流转', department: '部门', routeFeedback: '转交部门', departmentResponse: '部门答复',
    recordResponse: '记录答复', sendResult: '告知客户结果', result: '结果', calls: '关联来电',
    satisfaction: '满意度', notRated: '未评价', customer: '客户', requester: '联系人',
    newTicket: '新建工单（电话咨询等）', description: '问题描述', callerNumber: '来电号码',
    talkSeconds: '通话时长（秒）', logCall: '同时记录这通电话', ticketCreated: '工单已创建',
    board: 'SLA 看板', boardByQueue: '按队列', boardByAgent: '按坐席', liveFeed: '实时动态',
    liveOn: '实时连接中', liveOff: '实时连接断开，正在重连…', filingBoard: '征期看板',
    filingMissing: '下一期的法定申报截止日尚未载入日历，征期到期时间为推算值，请管理员在日历中补充。',
    daysLeft: '剩余天数', requests: '申请数', doneShare: '完成率', deadline: '截止日',
    customers: '客户', findCustomer: '按公司名称、统一社会信用代码、联系人姓名或电话查找', newCustomer: '新建客户',
    companyName: '公司名称', uscc: '统一社会信用代码', taxpayerType: '纳税人类型', tier: '服务等级',
    contactName: '联系人姓名', contactMobile: '联系人手机', contactEmail: '联系人邮箱', industry: '行业',
    region: '地区', tags: '标签', preferences: '偏好', contacts: '联系人', taxProfile: '税务资料',
    reveal: '查看明文', purpose: '查看目的', revealed: '已显示明文（本次查看已记入审计）', masked: '已脱敏',
    consents: '授权', followUps: '回访计划与记录', greetings: '节日问候', complaints: '投诉', tickets: '工单',
    taxNumber: '税号', taxAuthority: '主管税务机关', bankName: '开户行', bankAccount: '银行账号',
    revenueBand: '收入区间', notes: '备注', mobile: '手机', email: '邮箱', role: '角色', primary: '主联系人',
    dueVisits: '待回访', owner: '负责人', visitForm: '记录回访', outcome: '回访结果', nextAction: '后续事项',
    festival: '节日', targetsList: '问候名单', markSent: '标记已发送', exportCsv: '导出 CSV', sent: '已发送',
    complaintNo: '投诉编号', handler: '处理人', stage: '阶段', deadlines: '时限', record: '登记投诉',
    transition: '推进', history: '历史', source: '来源', severity: '严重程度', summary: '概要',
    courses: '课程', sessions: '培训场次', myEnrolments: '我的报名', exams: '考试', certificates: '证书',
    enrol: '报名', hours: '学时', title: '名称', start: '开始', end: '结束', trainer: '讲师', score: '得分',
    cycles: '考核周期', period: '期间', team: '团队', evaluations: '考核结果', myEvaluation: '我的考核',
    total: '总分', grade: '等级', bonus: '奖金', state: '状态', report: '报表', exportXlsx: '导出 Excel',
    selfAssessment: '自评', comment: '评语', submit: '提交', calibrate: '校准', acknowledge: '确认结果',
    appeal: '申诉', closeCycle: '结算', closeCalibration: '结束校准', finalize: '定稿',
    settings: '设置', accounts: '账号', newAgent: '新建坐席（员工 + 登录账号）', staffId: '工号',
    displayName: '姓名', position: '岗位', hireDate: '入职日期', roles: '角色', initialPassword: '初始密码',
    mustChangeBox: '首次登录须修改密码', accountCreated: '账号已创建，角色待另一位管理员批准',
    roleGrants: '角色授权审批', approve: '批准', reject: '驳回', approved: '已批准', teams: '团队与队列',
    members: '成员', leads: '组长', requestTypes: '业务类型', code: '代码', addCategory: '新增或修改分类', savePolicy: '保存 SLA 策略', saveRequestType: '保存业务类型', policies: 'SLA 策略', calendars: '工作日历',
    hoursUnit: '小时', minutesUnit: '分钟', warnAt: '预警（%）', policyId: '策略编号', name: '名称',
    records: '适用对象', channels: '渠道', metrics: '指标', clock: '计时', businessClock: '工作时间',
    calendarClock: '自然时间', saveReason: '修改原因', audit: '审计', auditTrail: '客户数据审计记录',
    accessLog: '敏感数据查看记录', verifyChain: '校验哈希链', chainOk: '哈希链完整', chainBad: '哈希链异常',
    time: '时间', actor: '操作人', action: '操作', detail: '内容', gatewayAudit: '账号与密钥审计',
    complaintAudit: '投诉审计', apiReference: 'API 参考', operations: '接口', fields: '字段',
    requiredRoles: '所需角色', noLogin: '无需登录', filterOps: '筛选接口…', body: '请求体',
    query: '查询参数', response: '返回', type: '类型', required: '必填',
    me: '当前用户', passMark: '及格分', timeLimit: '时限', startExam: '开始考试', answer: '作答', passed: '通过', notPassed: '未通过',
    review: '主管评分', disabled: '已停用', enabled: '正常', enable: '启用', disable: '停用', customerAmbiguous: '有多个客户符合，请写得更具体', customerNotFound: '找不到客户',
    countsAreTargets: '按 SLA 目标计数（一张工单可有多个目标）', requiredWithContact: '填写联系方式时必填', noAccess: '你的角色无权访问此页面', dueSoon: '临近', page: '页', more: '加载更多', openTicket: '打开',
    reopen: '重新打开', solved: '已解决', internal: '内部', public: '公开', author: '作者',
  },
  en: {
    app: 'kefu', lang: 'Language', logout: 'Log out', zone: 'Beijing time', error: 'Error', nothing: 'Nothing here',
    loading: 'Loading…', save: 'Save', cancel: 'Cancel', search: 'Search', refresh: 'Refresh', all: 'All', none: 'None',
    yes: 'Yes', no: 'No', actions: 'Actions', details: 'Details', created: 'Created', saved: 'Saved', done: 'Done',
    username: 'Username', password: 'Password', login: 'Log in', loginTitle: 'Log in to kefu',
    wrongLogin: 'Wrong username or password', changePassword: 'Change password', currentPassword: 'Current password',
    newPassword: 'New password', newPassword2: 'New password again', mismatch: 'The new passwords differ',
    mustChange: 'This password was set for you: choose your own (10 characters or more, not a common one) before your first login.',
    passwordChanged: 'Password changed: log in with the new one.',
    navMine: 'My tickets', navQueue: 'Team queue', navBoard: 'SLA board', navNew: 'New ticket', navCustomers: 'Customers',
    navFollowUps: 'Follow-ups & greetings', navComplaints: 'Complaints', navTraining: 'Training', navPerformance: 'Performance',
    navSettings: 'Settings', navAudit: 'Audit', navApi: 'API reference', navPassword: 'Password',
    number: 'Number', company: 'Company', kind: 'Kind', channel: 'Channel', subject: 'Subject', status: 'Status',
    priority: 'Priority', sla: 'SLA', due: 'Due', progress: 'Progress', assignee: 'Assignee', queue: 'Queue',
    category: 'Category', escalatedTo: 'Escalated to', filingPeriod: 'Filing period', text: 'Text', sortDue: 'Sort by next due',
    allOpen: 'All unresolved', atRisk: 'At risk', breached: 'Breached', paused: 'Paused', open: 'Open', unassigned: 'Unassigned',
    filter: 'Filter', bulkAssign: 'Assign selected to', assign: 'Assign', assigned: 'Assigned', select: 'Select',
    selectRow: 'Select ticket', noneSelected: 'Tick some tickets first',
    reply: 'Reply', replyPublic: 'Public reply (customer sees it)', replyInternal: 'Internal note', send: 'Send',
    changeStatus: 'Change status', reason: 'Reason', apply: 'Apply', materials: 'Materials', steps: 'Steps',
    timeline: 'Timeline', targets: 'SLA targets', remaining: 'Remaining', metric: 'Metric', dueTime: 'Due',
    feedback: 'Feedback routing', department: 'Department', routeFeedback: 'Route to department', departmentResponse: 'Department response',
    recordResponse: 'Record response', sendResult: 'Tell the customer', result: 'Result', calls: 'Linked calls',
    satisfaction: 'Satisfaction', notRated: 'Not rated', customer: 'Customer', requester: 'Requester',
    newTicket: 'New ticket (phone consultation etc.)', description: 'Description', callerNumber: 'Caller number',
    talkSeconds: 'Talk time (s)', logCall: 'Also log this call', ticketCreated: 'Ticket created',
    board: 'SLA board', boardByQueue: 'By queue', boardByAgent: 'By agent', liveFeed: 'Live feed',
    liveOn: 'Live', liveOff: 'Live connection lost, reconnecting…', filingBoard: 'Filing-period board',
    filingMissing: "Next period's official filing deadline is not loaded in the calendar: filing due times are estimates. An admin should add it.",
    daysLeft: 'Days left', requests: 'Requests', doneShare: 'Done', deadline: 'Deadline',
    customers: 'Customers', findCustomer: 'Find by company name, USCC, contact name or phone', newCustomer: 'New customer',
    companyName: 'Company name', uscc: 'USCC', taxpayerType: 'Taxpayer type', tier: 'Service tier',
    contactName: 'Contact name', contactMobile: 'Contact mobile', contactEmail: 'Contact email', industry: 'Industry',
    region: 'Region', tags: 'Tags', preferences: 'Preferences', contacts: 'Contacts', taxProfile: 'Tax profile',
    reveal: 'Reveal', purpose: 'Purpose', revealed: 'Shown in clear (this read is in the audit trail)', masked: 'Masked',
    consents: 'Consents', followUps: 'Follow-up plan and visits', greetings: 'Greetings', complaints: 'Complaints', tickets: 'Tickets',
    taxNumber: 'Tax number', taxAuthority: 'Tax authority', bankName: 'Bank', bankAccount: 'Bank account',
    revenueBand: 'Revenue band', notes: 'Notes', mobile: 'Mobile', email: 'Email', role: 'Role', primary: 'Primary',
    dueVisits: 'Visits due', owner: 'Owner', visitForm: 'Record a visit', outcome: 'Outcome', nextAction: 'Next action',
    festival: 'Festival', targetsList: 'Target list', markSent: 'Mark sent', exportCsv: 'Export CSV', sent: 'Sent',
    complaintNo: 'Complaint', handler: 'Handler', stage: 'Stage', deadlines: 'Deadlines', record: 'Record a complaint',
    transition: 'Move on', history: 'History', source: 'Source', severity: 'Severity', summary: 'Summary',
    courses: 'Courses', sessions: 'Sessions', myEnrolments: 'My enrolments', exams: 'Exams', certificates: 'Certificates',
    enrol: 'Enrol', hours: 'Hours', title: 'Title', start: 'Start', end: 'End', trainer: 'Trainer', score: 'Score',
    cycles: 'Cycles', period: 'Period', team: 'Team', evaluations: 'Evaluations', myEvaluation: 'My evaluation',
    total: 'Total', grade: 'Grade', bonus: 'Bonus', state: 'State', report: 'Report', exportXlsx: 'Export Excel',
    selfAssessment: 'Self-assessment', comment: 'Comment', submit: 'Submit', calibrate: 'Calibrate', acknowledge: 'Acknowledge',
    appeal: 'Appeal', closeCycle: 'Close', closeCalibration: 'Close calibration', finalize: 'Finalise',
    settings: 'Settings', accounts: 'Accounts', newAgent: 'New agent (staff record + login)', staffId: 'Staff id',
    displayName: 'Name', position: 'Position', hireDate: 'Hire date', roles: 'Roles', initialPassword: 'Initial password',
    mustChangeBox: 'Must change the password at first login', accountCreated: "Account created; its roles wait for a second admin's approval",
    roleGrants: 'Role grants', approve: 'Approve', reject: 'Reject', approved: 'Approved', teams: 'Teams and queues',
    members: 'Members', leads: 'Leads', requestTypes: 'Request types', code: 'Code', addCategory: 'Add or change a category', savePolicy: 'Save SLA policy', saveRequestType: 'Save request type', policies: 'SLA policies', calendars: 'Calendars',
    hoursUnit: 'hours', minutesUnit: 'minutes', warnAt: 'Warn at (%)', policyId: 'Policy id', name: 'Name',
    records: 'Applies to', channels: 'Channels', metrics: 'Metrics', clock: 'Clock', businessClock: 'Business hours',
    calendarClock: 'Calendar time', saveReason: 'Reason for the change', audit: 'Audit', auditTrail: "Customer data audit trail",
    accessLog: 'Reads of sensitive data', verifyChain: 'Verify hash chain', chainOk: 'Hash chain intact', chainBad: 'Hash chain broken',
    time: 'Time', actor: 'Actor', action: 'Action', detail: 'Detail', gatewayAudit: 'Accounts and keys audit',
    complaintAudit: 'Complaints audit', apiReference: 'API reference', operations: 'Operations', fields: 'Fields',
    requiredRoles: 'Roles', noLogin: 'no login', filterOps: 'Filter operations…', body: 'Body',
    query: 'Query', response: 'Response', type: 'Type', required: 'Required',
    me: 'Me', passMark: 'Pass mark', timeLimit: 'Time limit', startExam: 'Start exam', answer: 'Answer', passed: 'Passed', notPassed: 'Not passed',
    review: 'Review', disabled: 'Disabled', enabled: 'Active', enable: 'Enable', disable: 'Disable', customerAmbiguous: 'Several customers match; be more specific', customerNotFound: 'No such customer',
    countsAreTargets: 'Counted by SLA target (a ticket may have several)', requiredWithContact: 'required with contact details', noAccess: 'Your role may not open this page', dueSoon: 'Due soon', page: 'Page', more: 'Load more', openTicket: 'Open',
    reopen: 'Reopen', solved: 'Solved', internal: 'Internal', public: 'Public', author: 'Author',
  },
};

let lang = localStorage.getItem('kefu.lang') === 'en' ? 'en' : 'zh';
let labels = {};

export function getLang() { return lang; }
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('kefu.lang', lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}
export const KEYS = { zh: Object.keys(TEXT.zh), en: Object.keys(TEXT.en) };
export function t(key) { return TEXT[lang][key] ?? TEXT.zh[key] ?? key; }

export async function loadLabels() {
  const r = await fetch('/console/labels.json');
  labels = await r.json();
}
/** An enum value's label (Chinese or English); the value itself when it has none. */
export function label(value) {
  if (!value || String(value).endsWith('_UNSPECIFIED')) return '—';
  const l = labels[value];
  return l ? l[lang] : value;
}
/** The values of one enum (by their common prefix), in the contract's order. */
export function labelled(prefix) {
  return Object.keys(labels).filter((k) => k.startsWith(prefix)).sort((a, b) => (labels[a].n ?? 0) - (labels[b].n ?? 0) || a.localeCompare(b));
}

const fmt = {};
function formatter() {
  if (!fmt[lang]) {
    fmt[lang] = new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', {
      timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
    });
  }
  return fmt[lang];
}
/** A time in the firm's zone, e.g. 2026/12/08 09:30. */
export function fmtTime(v) {
  if (!v) return '—';
  const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
  if (Number.isNaN(d.getTime())) return String(v);
  return formatter().format(d);
}
/** Time left until `due` (negative: overdue), e.g. 剩1小时5分 / 1 h 5 min left. */
export function fmtRemaining(due) {
  return fmtDuration(new Date(due).getTime() - Date.now());
}
/** A span of time left (negative: overdue). */
export function fmtDuration(ms) {
  const abs = Math.abs(ms);
  const mins = Math.floor(abs / 60000);
  const d = Math.floor(mins / 1440); const hh = Math.floor((mins % 1440) / 60); const mm = mins % 60;
  const txt = lang === 'en'
    ? [d ? `${d} d` : '', hh ? `${hh} h` : '', `${mm} min`].filter(Boolean).join(' ')
    : [d ? `${d}天` : '', hh ? `${hh}小时` : '', `${mm}分`].join('');
  if (ms < 0) return lang === 'en' ? `${txt} overdue` : `超时${txt}`;
  return lang === 'en' ? `${txt} left` : `剩${txt}`;
}
/** Fen as yuan: ¥1,234.50. */
export function fmtMoney(fen) {
  const n = Number(fen || 0) / 100;
  return `¥${n.toLocaleString('zh-CN', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
/** The calendar day (YYYY-MM-DD) in the firm's zone. */
export function dayInZone(d = new Date()) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

const METRICS = {
  first_response: ['首次响应', 'First response'], next_response: ['后续响应', 'Next response'], resolution: ['解决', 'Resolution'],
  feedback_reply: ['反馈答复', 'Feedback reply'], answer: ['接听', 'Answer'], acknowledgement: ['受理确认', 'Acknowledgement'],
  preliminary_opinion: ['初步意见', 'Preliminary opinion'], corrective_action: ['整改措施', 'Corrective action'],
};
/** An SLA metric's name. */
export function metricName(m) {
  const x = METRICS[m];
  return x ? x[lang === 'en' ? 1 : 0] : m || '—';
}

const TIMELINE = {
  created: ['创建', 'Created'], customer_message: ['客户消息', 'Customer message'], public_reply: ['公开回复', 'Public reply'],
  internal_note: ['内部备注', 'Internal note'], status: ['状态变更', 'Status'], assignment: ['分配', 'Assignment'],
  notification: ['SLA 提醒', 'SLA notice'], phone_contact: ['来电', 'Phone contact'], progress: ['办理进度', 'Progress'],
  feedback: ['反馈流转', 'Feedback'], rating: ['满意度评价', 'Rating'], update: ['修改', 'Update'], escalation: ['升级', 'Escalation'],
};
/** A timeline entry's kind. */
export function timelineKind(k) {
  const x = TIMELINE[k];
  return x ? x[lang === 'en' ? 1 : 0] : k || '—';
}
