// Every page of the console. Pages load on demand, so the first load carries
// only the shell and the page asked for (xterm.js rides with the sandbox page).
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { auth } from './api/auth'
import { onUnauthorized } from './api/client'
import ChatPage from './pages/chat/ChatPage.vue'

const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/chat' },
  { path: '/setup', component: () => import('./pages/SetupPage.vue'), meta: { public: true, title: 'Set up' } },
  { path: '/login', component: () => import('./pages/LoginPage.vue'), meta: { public: true, title: 'Sign in' } },
  { path: '/chat/:id?', component: ChatPage, meta: { title: 'Chat' } },
  { path: '/agents', component: () => import('./pages/agents/AgentsPage.vue'), meta: { title: 'Agents' } },
  { path: '/tasks', component: () => import('./pages/tasks/TasksPage.vue'), meta: { title: 'Tasks' } },
  { path: '/tasks/:id', component: () => import('./pages/tasks/TaskPage.vue'), meta: { title: 'Task' } },
  { path: '/sandboxes', component: () => import('./pages/sandboxes/SandboxesPage.vue'), meta: { title: 'Sandboxes' } },
  { path: '/sandboxes/:id', component: () => import('./pages/sandboxes/SandboxPage.vue'), meta: { title: 'Sandbox' } },
  { path: '/plugins', component: () => import('./pages/plugins/PluginsPage.vue'), meta: { title: 'Plugins' } },
  { path: '/plugins/:name', component: () => import('./pages/plugins/PluginPage.vue'), meta: { title: 'Plugin' } },
  { path: '/playground/:plugin?/:tool?', component: () => import('./pages/plugins/PlaygroundPage.vue'), meta: { title: 'Tool playground' } },
  { path: '/skills', component: () => import('./pages/skills/SkillsPage.vue'), meta: { title: 'Skills' } },
  { path: '/skills/:source/:name', component: () => import('./pages/skills/SkillPage.vue'), meta: { title: 'Skill' } },
  { path: '/schedules', component: () => import('./pages/schedules/SchedulesPage.vue'), meta: { title: 'Schedules' } },
  { path: '/schedules/:id', component: () => import('./pages/schedules/SchedulePage.vue'), meta: { title: 'Schedule' } },
  { path: '/channels', component: () => import('./pages/channels/ChannelsPage.vue'), meta: { title: 'Channels' } },
  { path: '/channels/:id', component: () => import('./pages/channels/ChannelPage.vue'), meta: { title: 'Channel' } },
  { path: '/tokens', component: () => import('./pages/admin/TokensPage.vue'), meta: { title: 'API tokens' } },
  { path: '/admin', redirect: '/admin/users' },
  { path: '/admin/users', component: () => import('./pages/admin/UsersPage.vue'), meta: { title: 'Users', admin: true } },
  { path: '/admin/audit', component: () => import('./pages/admin/AuditPage.vue'), meta: { title: 'Audit log', admin: true } },
  { path: '/admin/system', component: () => import('./pages/admin/SystemPage.vue'), meta: { title: 'System', admin: true } },
  { path: '/connect', component: () => import('./pages/ConnectPage.vue'), meta: { title: 'Connect an MCP client' } },
  { path: '/:rest(.*)*', component: () => import('./pages/NotFoundPage.vue'), meta: { public: true, title: 'Not found' } },
]

/** The console's router (HTML5 history: the host serves index.html for every page path). */
export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  if (to.meta.public) return true
  if (!auth.tokens) return { path: '/login', query: { next: to.fullPath } }
  if (to.meta.admin && auth.tokens.user.role !== 'admin') return { path: '/chat' }
  return true
})

router.afterEach((to) => {
  document.title = `${(to.meta.title as string) ?? 'Console'} · switchyard`
})

onUnauthorized(() => {
  const here = router.currentRoute.value
  if (!here.meta.public) void router.push({ path: '/login', query: { next: here.fullPath, expired: '1' } })
})
