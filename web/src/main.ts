// The console's entry: the router, the styles and the signed-in state.
import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { schedule } from './api/auth'
import './styles.css'

schedule()
createApp(App).use(router).mount('#app')
