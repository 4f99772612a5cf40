// The console's entry: the router, the styles and the signed-in state.
import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { schedule } from './api/auth'
import './styles.css'

document.documentElement.dataset.theme = localStorage.getItem('switchyard.theme') === 'light' ? 'light' : 'dark'
schedule()
createApp(App).use(router).mount('#app')
