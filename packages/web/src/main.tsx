import { createRoot } from 'react-dom/client';

// The dashboard is being built (issue: The Runlog dashboard).
createRoot(document.getElementById('root')!).render(<p>Runlog</p>);
