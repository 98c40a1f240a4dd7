// Uzbek (Latin) and English. Elements carry data-i18n="key" (text) or
// data-i18n-placeholder="key"; scripts call t("key").
const en = {
  replay: "Track replay", replay_load: "Load", replay_max: "at most 31 days", play: "Play", pause: "Pause",
  speed: "Speed", replay_fix: "Fix", replay_clock: "replay clock", replay_pick_subject: "Choose a subject first.",
  replay_bad_range: "The end must be after the start.", replay_too_long: "At most 31 days.",
  replay_no_fixes: "No fixes in this range.", jump_replay: "Replay",
  title: "Nazorat — officers' console", appeal_title: "Nazorat — alerts and appeals",
  signin: "Sign in", signout: "Sign out", username: "Username", password: "Password",
  session_expired: "Your session has expired. Please sign in again.", wrong_login: "Wrong username or password.",
  alerts: "Alerts", map: "Map", statistics: "Statistics", zones: "Zones", new_zone: "New zone",
  feed_live: "Live", feed_reconnecting: "Reconnecting…", feed_expired: "Session expired",
  filter_kind: "Type", filter_status: "Status", filter_severity: "Severity", filter_subject: "Subject",
  filter_since: "From", filter_until: "To", filter_mine: "Assigned to me", apply: "Apply", older: "Older alerts",
  any: "any", open: "open", acknowledged: "acknowledged", resolved: "resolved",
  critical: "critical", high: "high", medium: "medium", low: "low",
  acknowledge: "Acknowledge", assign_me: "Assign to me", assign: "Assign", resolve: "Resolve", reopen: "Reopen",
  note: "Note", note_required: "A note is required.", outcome: "Outcome", officer_id: "Officer (account id)",
  confirmed_violation: "confirmed violation", false_alarm: "false alarm", technical: "technical", excused: "excused",
  created: "Created", subject: "Subject", device: "Device", zone: "Zone", distance: "Distance",
  no_alerts: "No alerts.", select_alert: "Select an alert to see it on the map.",
  times_in: "Times shown in", subject_zone: "the subject's time zone", my_zone: "my time zone",
  legend_inclusion: "Inclusion zone", legend_exclusion: "Exclusion zone", legend_victim: "Victim-sensitive zone",
  legend_track: "Track (accuracy circles)", legend_gap: "Gap in the track", legend_evidence: "Alert's fix",
  legend_context: "Evidence fixes", hidden_zones: "zones hidden for your role",
  zone_id: "Zone id", zone_name: "Name", zone_kind: "Kind", inclusion: "inclusion", exclusion: "exclusion",
  shape: "Shape", circle: "circle", polygon: "polygon", radius: "Radius (m)", buffer: "Buffer (m)",
  draw_hint: "Click the map: a circle's centre, or a polygon's corners.", clear: "Clear", save_zone: "Save zone",
  zone_saved: "Zone saved.", group_by: "Group by", kind: "type", officer: "officer", unit: "unit",
  total: "Alerts", ack_p50: "Time to acknowledge, median (min)", false_rate: "False-alarm rate",
  my_alerts: "Alerts about me", contestable_hint: "These are the alerts resolved as violations, which you may contest.",
  appeals_closed: "Filing appeals online is not available yet. Contact the probation office.",
  contest: "Contest this alert", appeal_text: "Your reasons", attachment: "Attachment", send: "Send",
  general_appeal: "General appeal", language: "Til / Language", done: "Done.", last_fix: "Last fix",
  subjects: "Subjects", role: "Role", not_allowed: "This account cannot use the console.",
  use_appeal_page: "Appellants: please use the appeals page.",
  general_hint: "An application, proposal or complaint about the supervision (device, schedule, an officer's conduct).",
  appeal_kind: "Kind", kind_application: "Application", kind_proposal: "Proposal", kind_complaint: "Complaint",
  kind_contest: "Contest of alert", attachment_hint: "Optional: PDF, JPEG or PNG, at most 5 MiB (up to 5 files an appeal).",
  text_required: "Please write your reasons.", file_too_big: "The file is larger than 5 MiB.",
  filed: "Your appeal has been filed.", file_refused: "Your appeal has been filed, but the file was refused:",
  contest_open: "Your contest of this alert is being considered.", my_appeals: "My appeals",
  no_appeals: "You have not filed an appeal yet.", submitted_at: "Filed", due_by: "Answer due by",
  decided_at: "Decided", decision: "Decision", my_text: "What I wrote", notices: "Notices", attachments: "Files",
  overdue_mark: "overdue", state_submitted: "received", state_under_review: "under review", state_upheld: "upheld",
  state_rejected: "rejected", state_answered: "answered",
  appeals: "Appeals", overdue_list: "Overdue (longest first)", no_overdue: "Nothing overdue.",
  appeal_state: "State", open_appeals: "open", reviewer: "Reviewer", reviewer_id: "Reviewer (account id)",
  assign_reviewer: "Assign reviewer", assign_me_reviewer: "Review it myself", decide: "Decide", reason: "Reasons",
  reason_required: "A reasoned text is required.", evidence: "Evidence captured at filing",
  evidence_fixes: "fixes", select_appeal: "Select an appeal.", appellant_text: "The appellant's text",
  steps: "Steps", decided_late: "decided late", only_reviewer: "Only the assigned reviewer decides.",
  decision_upheld: "upheld", decision_rejected: "rejected", decision_answered: "answered", refresh: "Refresh",
  extend_reason: "Reason for the extension", extend_until: "New last day (optional)", extend: "Extend once",
  needs_study: "Needs further study", no_appeals_queue: "No appeals.",
};

const uz = {
  replay: "Harakat yo‘lini qayta ko‘rish", replay_load: "Yuklash", replay_max: "ko‘pi bilan 31 kun", play: "Boshlash",
  pause: "To‘xtatish", speed: "Tezlik", replay_fix: "Nuqta", replay_clock: "qayta ko‘rish vaqti",
  replay_pick_subject: "Avval shaxsni tanlang.", replay_bad_range: "Oxiri boshidan keyin bo‘lishi kerak.",
  replay_too_long: "Ko‘pi bilan 31 kun.", replay_no_fixes: "Bu oraliqda nuqtalar yo‘q.", jump_replay: "Qayta ko‘rish",
  title: "Nazorat — inspektorlar paneli", appeal_title: "Nazorat — ogohlantirishlar va shikoyatlar",
  signin: "Kirish", signout: "Chiqish", username: "Foydalanuvchi nomi", password: "Parol",
  session_expired: "Seans muddati tugadi. Iltimos, qaytadan kiring.", wrong_login: "Foydalanuvchi nomi yoki parol noto‘g‘ri.",
  alerts: "Ogohlantirishlar", map: "Xarita", statistics: "Statistika", zones: "Hududlar", new_zone: "Yangi hudud",
  feed_live: "Jonli", feed_reconnecting: "Qayta ulanmoqda…", feed_expired: "Seans tugadi",
  filter_kind: "Turi", filter_status: "Holati", filter_severity: "Jiddiyligi", filter_subject: "Shaxs",
  filter_since: "Dan", filter_until: "Gacha", filter_mine: "Menga biriktirilgan", apply: "Qo‘llash",
  older: "Oldingi ogohlantirishlar", any: "barchasi", open: "ochiq", acknowledged: "qabul qilingan",
  resolved: "hal qilingan", critical: "o‘ta jiddiy", high: "yuqori", medium: "o‘rta", low: "past",
  acknowledge: "Qabul qilish", assign_me: "O‘zimga biriktirish", assign: "Biriktirish", resolve: "Hal qilish",
  reopen: "Qayta ochish", note: "Izoh", note_required: "Izoh yozish shart.", outcome: "Natija",
  officer_id: "Inspektor (hisob raqami)", confirmed_violation: "tasdiqlangan buzilish", false_alarm: "yolg‘on signal",
  technical: "texnik nosozlik", excused: "uzrli", created: "Yaratilgan", subject: "Shaxs", device: "Qurilma",
  zone: "Hudud", distance: "Masofa", no_alerts: "Ogohlantirishlar yo‘q.",
  select_alert: "Xaritada ko‘rish uchun ogohlantirishni tanlang.", times_in: "Vaqt ko‘rsatilgan mintaqa",
  subject_zone: "shaxsning vaqt mintaqasi", my_zone: "mening vaqt mintaqam",
  legend_inclusion: "Ruxsat etilgan hudud", legend_exclusion: "Taqiqlangan hudud",
  legend_victim: "Jabrlanuvchi hududi", legend_track: "Yo‘l (aniqlik doiralari)", legend_gap: "Yo‘ldagi uzilish",
  legend_evidence: "Ogohlantirish nuqtasi", legend_context: "Dalil nuqtalari",
  hidden_zones: "hudud sizning rolingiz uchun yashirilgan", zone_id: "Hudud identifikatori", zone_name: "Nomi",
  zone_kind: "Turi", inclusion: "ruxsat etilgan", exclusion: "taqiqlangan", shape: "Shakli", circle: "doira",
  polygon: "ko‘pburchak", radius: "Radius (m)", buffer: "Bufer (m)",
  draw_hint: "Xaritani bosing: doira markazi yoki ko‘pburchak burchaklari.", clear: "Tozalash",
  save_zone: "Hududni saqlash", zone_saved: "Hudud saqlandi.", group_by: "Guruhlash", kind: "turi",
  officer: "inspektor", unit: "bo‘linma", total: "Ogohlantirishlar", ack_p50: "Qabul qilish vaqti, mediana (daq.)",
  false_rate: "Yolg‘on signallar ulushi", my_alerts: "Men haqimdagi ogohlantirishlar",
  contestable_hint: "Bu buzilish deb topilgan ogohlantirishlar; ularga e’tiroz bildirishingiz mumkin.",
  appeals_closed: "Onlayn shikoyat berish hozircha mavjud emas. Probatsiya bo‘limiga murojaat qiling.",
  contest: "Ushbu ogohlantirishga e’tiroz", appeal_text: "Sabablaringiz", attachment: "Ilova", send: "Yuborish",
  general_appeal: "Umumiy shikoyat", language: "Til / Language", done: "Bajarildi.", last_fix: "Oxirgi nuqta",
  subjects: "Shaxslar", role: "Rol", not_allowed: "Bu hisob paneldan foydalana olmaydi.",
  use_appeal_page: "Shikoyatchilar: iltimos, shikoyatlar sahifasidan foydalaning.",
  general_hint: "Nazorat haqida ariza, taklif yoki shikoyat (qurilma, jadval, xodimning xatti-harakati).",
  appeal_kind: "Turi", kind_application: "Ariza", kind_proposal: "Taklif", kind_complaint: "Shikoyat",
  kind_contest: "Ogohlantirishga e’tiroz", attachment_hint: "Ixtiyoriy: PDF, JPEG yoki PNG, ko‘pi bilan 5 MiB (bir murojaatga 5 tagacha fayl).",
  text_required: "Iltimos, sabablaringizni yozing.", file_too_big: "Fayl 5 MiB dan katta.",
  filed: "Murojaatingiz yuborildi.", file_refused: "Murojaatingiz yuborildi, lekin fayl qabul qilinmadi:",
  contest_open: "Ushbu ogohlantirishga e’tirozingiz ko‘rib chiqilmoqda.", my_appeals: "Mening murojaatlarim",
  no_appeals: "Siz hali murojaat yubormagansiz.", submitted_at: "Yuborilgan", due_by: "Javob muddati",
  decided_at: "Qaror sanasi", decision: "Qaror", my_text: "Men yozgan matn", notices: "Xabarnomalar", attachments: "Fayllar",
  overdue_mark: "muddati o‘tgan", state_submitted: "qabul qilindi", state_under_review: "ko‘rib chiqilmoqda",
  state_upheld: "qanoatlantirildi", state_rejected: "rad etildi", state_answered: "javob berildi",
  appeals: "Murojaatlar", overdue_list: "Muddati o‘tganlar (eng eskisi birinchi)", no_overdue: "Muddati o‘tgan murojaat yo‘q.",
  appeal_state: "Holati", open_appeals: "ochiq", reviewer: "Ko‘rib chiquvchi", reviewer_id: "Ko‘rib chiquvchi (hisob raqami)",
  assign_reviewer: "Ko‘rib chiquvchini tayinlash", assign_me_reviewer: "O‘zim ko‘rib chiqaman", decide: "Qaror qabul qilish",
  reason: "Sabablari", reason_required: "Asoslantirilgan matn yozish shart.", evidence: "Murojaat paytida olingan dalillar",
  evidence_fixes: "nuqta", select_appeal: "Murojaatni tanlang.", appellant_text: "Murojaatchining matni",
  steps: "Bosqichlar", decided_late: "kech hal qilingan", only_reviewer: "Faqat tayinlangan ko‘rib chiquvchi qaror qabul qiladi.",
  decision_upheld: "qanoatlantirildi", decision_rejected: "rad etildi", decision_answered: "javob berildi", refresh: "Yangilash",
  extend_reason: "Muddatni uzaytirish sababi", extend_until: "Yangi oxirgi kun (ixtiyoriy)", extend: "Bir marta uzaytirish",
  needs_study: "Qo‘shimcha o‘rganish talab etiladi", no_appeals_queue: "Murojaatlar yo‘q.",
};

const dictionaries = { en, uz };
let lang = localStorage.getItem("nazorat.lang") || "uz";

export function t(key) { return dictionaries[lang][key] ?? dictionaries.en[key] ?? key; }
export function language() { return lang; }

export function setLanguage(next) {
  lang = dictionaries[next] ? next : "uz";
  localStorage.setItem("nazorat.lang", lang);
  document.documentElement.lang = lang;
  applyTo(document);
}

export function applyTo(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}
