// biome-ignore-all format: compact word lists are easier to read and review than one entry per line
/**
 * Word lists the benchmark data generator draws from. Weighted choices are expressed by repeating an
 * entry (e.g. 'delivered' appears many times in ORDER_STATUSES).
 */

export const FIRST_NAMES = [
  'James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David', 'Elizabeth',
  'William', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica', 'Thomas', 'Sarah', 'Charles', 'Karen',
  'Christopher', 'Lisa', 'Daniel', 'Nancy', 'Matthew', 'Betty', 'Anthony', 'Margaret', 'Mark', 'Sandra',
  'Donald', 'Ashley', 'Steven', 'Kimberly', 'Paul', 'Emily', 'Andrew', 'Donna', 'Joshua', 'Michelle',
  'Kenneth', 'Carol', 'Kevin', 'Amanda', 'Brian', 'Dorothy', 'George', 'Melissa', 'Timothy', 'Deborah',
  'Ronald', 'Stephanie', 'Edward', 'Rebecca', 'Jason', 'Sharon', 'Jeffrey', 'Laura', 'Ryan', 'Cynthia',
  'Jacob', 'Kathleen', 'Gary', 'Amy', 'Nicholas', 'Angela', 'Eric', 'Shirley', 'Jonathan', 'Anna',
  'Stephen', 'Brenda', 'Larry', 'Pamela', 'Justin', 'Emma', 'Scott', 'Nicole', 'Brandon', 'Helen',
  'Benjamin', 'Samantha', 'Samuel', 'Katherine', 'Gregory', 'Christine', 'Alexander', 'Debra', 'Frank',
  'Rachel', 'Patrick', 'Carolyn', 'Raymond', 'Janet', 'Jack', 'Catherine', 'Dennis', 'Maria', 'Jerry',
  'Heather', 'Tyler', 'Diane', 'Aaron', 'Ruth', 'Jose', 'Julie', 'Adam', 'Olivia', 'Nathan', 'Joyce',
  'Henry', 'Virginia', 'Douglas', 'Victoria', 'Zachary', 'Kelly', 'Peter', 'Lauren', 'Kyle', 'Christina',
  'Noah', 'Joan', 'Ethan', 'Evelyn', 'Jeremy', 'Judith', 'Walter', 'Megan', 'Christian', 'Andrea',
  'Keith', 'Cheryl', 'Roger', 'Hannah', 'Terry', 'Jacqueline', 'Austin', 'Martha', 'Sean', 'Gloria',
  'Lukas', 'Sofia', 'Mateo', 'Camille', 'Hiroshi', 'Yuki', 'Wei', 'Mei', 'Arjun', 'Priya', 'Omar', 'Fatima',
  'Sven', 'Ingrid', 'Pierre', 'Chloe', 'Giovanni', 'Giulia', 'Pablo', 'Lucia', 'Dmitri', 'Anastasia',
];

export const LAST_NAMES = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green',
  'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts', 'Gomez',
  'Phillips', 'Evans', 'Turner', 'Diaz', 'Parker', 'Cruz', 'Edwards', 'Collins', 'Reyes', 'Stewart',
  'Morris', 'Morales', 'Murphy', 'Cook', 'Rogers', 'Gutierrez', 'Ortiz', 'Morgan', 'Cooper', 'Peterson',
  'Bailey', 'Reed', 'Kelly', 'Howard', 'Ramos', 'Kim', 'Cox', 'Ward', 'Richardson', 'Watson', 'Brooks',
  'Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'Mendoza', 'Ruiz', 'Hughes', 'Price', 'Alvarez', 'Castillo',
  'Sanders', 'Patel', 'Myers', 'Long', 'Ross', 'Foster', 'Jimenez', "O'Brien", "O'Connor", 'Schmidt',
  'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Hoffmann', 'Dubois', 'Lefebvre', 'Moreau',
  'Rossi', 'Russo', 'Ferrari', 'Esposito', 'Bianchi', 'Tanaka', 'Suzuki', 'Takahashi', 'Watanabe', 'Wang',
  'Li', 'Zhang', 'Liu', 'Chen', 'Singh', 'Kumar', 'Sharma', 'Ivanov', 'Petrov', 'Novak', 'Kowalski',
  'Nowak', 'Jensen', 'Nielsen', 'Hansen', 'Larsen', 'Andersson', 'Johansson', 'Silva', 'Santos', 'Costa',
];

/** City, ISO country code and a postal-code pattern prefix, as 'City|CC|prefix'. */
export const CITIES = [
  'New York|US|100', 'Los Angeles|US|900', 'Chicago|US|606', 'Houston|US|770', 'Phoenix|US|850',
  'Philadelphia|US|191', 'San Antonio|US|782', 'San Diego|US|921', 'Dallas|US|752', 'Austin|US|787',
  'Seattle|US|981', 'Denver|US|802', 'Boston|US|021', 'Portland|US|972', 'Atlanta|US|303', 'Miami|US|331',
  'Toronto|CA|M5V', 'Vancouver|CA|V6B', 'Montreal|CA|H2X', 'London|GB|EC1', 'Manchester|GB|M1 ',
  'Edinburgh|GB|EH1', 'Dublin|IE|D02', 'Paris|FR|750', 'Lyon|FR|690', 'Marseille|FR|130', 'Berlin|DE|101',
  'Munich|DE|803', 'Hamburg|DE|203', 'Cologne|DE|506', 'Amsterdam|NL|101', 'Rotterdam|NL|301',
  'Brussels|BE|100', 'Madrid|ES|280', 'Barcelona|ES|080', 'Lisbon|PT|110', 'Rome|IT|001', 'Milan|IT|201',
  'Vienna|AT|101', 'Zurich|CH|800', 'Stockholm|SE|111', 'Oslo|NO|015', 'Copenhagen|DK|110',
  'Helsinki|FI|001', 'Warsaw|PL|00-', 'Prague|CZ|110', 'Budapest|HU|105', 'Athens|GR|105', 'Tokyo|JP|100',
  'Osaka|JP|530', 'Seoul|KR|041', 'Singapore|SG|018', 'Sydney|AU|200', 'Melbourne|AU|300',
  'Auckland|NZ|101', 'Sao Paulo|BR|010', 'Mexico City|MX|060', 'Buenos Aires|AR|C10', 'Mumbai|IN|400',
  'Bangalore|IN|560', 'Cape Town|ZA|800', 'Tel Aviv|IL|610',
];

export const STREET_NAMES = [
  'Main', 'Oak', 'Pine', 'Maple', 'Cedar', 'Elm', 'Washington', 'Lake', 'Hill', 'Park', 'View', 'Sunset',
  'Lincoln', 'Jackson', 'Church', 'River', 'Highland', 'Forest', 'Meadow', 'Willow', 'Spring', 'North',
  'South', 'Mill', 'Center', 'Walnut', 'Chestnut', 'Franklin', 'Jefferson', 'Madison', 'Adams', 'Ridge',
  'Valley', 'Cherry', 'Birch', 'Dogwood', 'Railroad', 'Market', 'Bridge', 'Harbor', 'King', 'Queen',
  'Victoria', 'Station', 'High', 'Green', 'Mountain', 'Prospect', 'College', 'Union',
];

export const STREET_SUFFIXES = ['St', 'Ave', 'Rd', 'Blvd', 'Ln', 'Dr', 'Ct', 'Way', 'Pl', 'Terrace'];

export const EMAIL_DOMAINS = [
  'gmail.com', 'gmail.com', 'gmail.com', 'gmail.com', 'yahoo.com', 'yahoo.com', 'outlook.com', 'hotmail.com',
  'icloud.com', 'proton.me', 'aol.com', 'gmx.de', 'web.de', 'orange.fr', 'free.fr', 'libero.it',
  'example.org', 'fastmail.com', 'zoho.com', 'mail.ru', 'qq.com', 'naver.com', 'acme-corp.com',
  'initech.io', 'globex.net', 'umbrella.co',
];

/** General vocabulary for free text, roughly in frequency order (picks are skewed towards the start). */
export const VOCABULARY = [
  'the', 'order', 'customer', 'was', 'and', 'to', 'a', 'of', 'for', 'in', 'is', 'on', 'with', 'item',
  'payment', 'has', 'been', 'by', 'please', 'not', 'shipping', 'delivery', 'this', 'that', 'from',
  'account', 'request', 'received', 'updated', 'status', 'address', 'should', 'at', 'will', 'be',
  'refund', 'package', 'product', 'after', 'before', 'we', 'our', 'it', 'they', 'their', 'new', 'check',
  'email', 'phone', 'contact', 'support', 'ticket', 'issue', 'resolved', 'pending', 'invoice', 'billing',
  'card', 'declined', 'approved', 'return', 'label', 'warehouse', 'stock', 'available', 'backorder',
  'expected', 'date', 'week', 'days', 'today', 'tomorrow', 'yesterday', 'morning', 'afternoon', 'evening',
  'quickly', 'again', 'also', 'still', 'only', 'just', 'very', 'more', 'less', 'some', 'any', 'all',
  'each', 'every', 'other', 'another', 'first', 'last', 'next', 'previous', 'same', 'different',
  'requested', 'asked', 'wants', 'needs', 'prefers', 'called', 'wrote', 'replied', 'confirmed',
  'cancelled', 'changed', 'moved', 'sent', 'shipped', 'delivered', 'damaged', 'missing', 'wrong', 'size',
  'color', 'quantity', 'price', 'discount', 'coupon', 'code', 'applied', 'expired', 'valid', 'invalid',
  'gift', 'wrap', 'note', 'message', 'door', 'front', 'back', 'neighbor', 'building', 'floor', 'apartment',
  'office', 'reception', 'signature', 'required', 'left', 'outside', 'inside', 'carrier', 'tracking',
  'number', 'link', 'website', 'app', 'mobile', 'login', 'password', 'reset', 'locked', 'verified',
  'profile', 'settings', 'notification', 'subscription', 'renewal', 'plan', 'upgrade', 'downgrade',
  'trial', 'monthly', 'annual', 'charge', 'credit', 'balance', 'loyalty', 'points', 'reward', 'tier',
  'gold', 'silver', 'bronze', 'platinum', 'review', 'rating', 'stars', 'happy', 'unhappy', 'satisfied',
  'complaint', 'feedback', 'survey', 'escalated', 'manager', 'agent', 'team', 'priority', 'urgent',
  'normal', 'low', 'high', 'system', 'automatic', 'manual', 'batch', 'import', 'export', 'sync', 'error',
  'timeout', 'retry', 'failed', 'succeeded', 'completed', 'started', 'queued', 'processing', 'report',
  'monitor', 'keyboard', 'chair', 'desk', 'lamp', 'jacket', 'shoes', 'backpack', 'bottle', 'headphones',
  'charger', 'cable', 'case', 'cover', 'blanket', 'pillow', 'mug', 'kettle', 'blender', 'book', 'toy',
  'because', 'however', 'although', 'since', 'while', 'until', 'unless', 'therefore', 'instead',
  'regarding', 'about', 'between', 'during', 'without', 'within', 'through', 'around', 'against',
  'weekend', 'holiday', 'season', 'sale', 'promotion', 'campaign', 'newsletter', 'unsubscribe', 'store',
  'pickup', 'locker', 'express', 'standard', 'overnight', 'international', 'customs', 'duty', 'tax',
  'fee', 'total', 'partial', 'full', 'exchange', 'replacement', 'warranty', 'repair', 'technician',
];

export const PRODUCT_ADJECTIVES = [
  'Classic', 'Premium', 'Compact', 'Ergonomic', 'Lightweight', 'Heavy-Duty', 'Wireless', 'Portable',
  'Vintage', 'Modern', 'Deluxe', 'Eco', 'Ultra', 'Smart', 'Rustic', 'Sleek', 'Essential', 'Pro',
  'Foldable', 'Insulated', 'Waterproof', 'Handmade', 'Organic', 'Adjustable',
];

export const PRODUCT_MATERIALS = [
  'Cotton', 'Leather', 'Steel', 'Bamboo', 'Ceramic', 'Wool', 'Oak', 'Aluminum', 'Glass', 'Linen',
  'Silicone', 'Walnut', 'Copper', 'Denim', 'Nylon', 'Granite',
];

export const PRODUCT_NOUNS = [
  'Backpack', 'Water Bottle', 'Desk Lamp', 'Office Chair', 'Keyboard', 'Mouse', 'Monitor Stand',
  'Headphones', 'Jacket', 'Sneakers', 'Wallet', 'Watch', 'Mug', 'Kettle', 'Blender', 'Cutting Board',
  'Frying Pan', 'Blanket', 'Pillow', 'Towel Set', 'Notebook', 'Pen Set', 'Phone Case', 'Charger',
  'Speaker', 'Tent', 'Sleeping Bag', 'Yoga Mat', 'Dumbbell Set', 'Plant Pot', 'Candle', 'Picture Frame',
];

export const PRODUCT_CATEGORIES = [
  'electronics', 'home', 'kitchen', 'apparel', 'footwear', 'outdoor', 'fitness', 'office', 'accessories',
  'garden', 'toys', 'books', 'beauty', 'pets',
];

export const COLORS = [
  'black', 'white', 'gray', 'navy', 'red', 'green', 'blue', 'beige', 'brown', 'olive', 'pink', 'yellow',
];

export const SIZES = ['XS', 'S', 'M', 'M', 'L', 'L', 'XL', 'XXL', 'one-size'];

export const ORDER_STATUSES = [
  'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered',
  'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'shipped', 'shipped',
  'processing', 'pending', 'cancelled', 'refunded',
];

export const CURRENCIES = ['USD', 'USD', 'USD', 'EUR', 'EUR', 'GBP', 'CAD', 'AUD', 'JPY', 'CHF'];

export const PAYMENT_METHODS = ['card', 'card', 'card', 'card', 'paypal', 'paypal', 'apple_pay', 'bank_transfer', 'gift_card'];

export const LOYALTY_TIERS = ['none', 'none', 'none', 'bronze', 'bronze', 'silver', 'gold', 'platinum'];

export const EVENT_TYPES = [
  'page_view', 'page_view', 'page_view', 'page_view', 'page_view', 'page_view', 'product_view',
  'product_view', 'product_view', 'search', 'search', 'add_to_cart', 'add_to_cart', 'remove_from_cart',
  'begin_checkout', 'purchase', 'login', 'logout', 'signup', 'newsletter_subscribe', 'review_submitted',
];

export const PAGES = [
  '/', '/', '/', '/products', '/products', '/cart', '/checkout', '/checkout/payment', '/account',
  '/account/orders', '/account/settings', '/search', '/category/electronics', '/category/home',
  '/category/apparel', '/category/kitchen', '/sale', '/help', '/help/shipping', '/help/returns', '/blog',
  '/blog/gift-guide', '/about', '/contact', '/login', '/signup',
];

export const REFERRERS = [
  'direct', 'direct', 'direct', 'https://www.google.com/', 'https://www.google.com/',
  'https://www.google.com/', 'https://www.bing.com/', 'https://duckduckgo.com/', 'https://www.facebook.com/',
  'https://t.co/', 'https://www.instagram.com/', 'https://www.reddit.com/', 'https://news.ycombinator.com/',
  'email:newsletter', 'email:transactional',
];

export const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  'datasaver-mobile/3.14.2 (iOS 17.4; iPhone15,2)',
  'datasaver-mobile/3.13.0 (Android 14; Pixel 7)',
  'curl/8.5.0',
  'python-requests/2.31.0',
];

export const DEVICE_TYPES = ['desktop', 'desktop', 'mobile', 'mobile', 'mobile', 'tablet'];

export const OPERATING_SYSTEMS = ['Windows', 'Windows', 'macOS', 'iOS', 'iOS', 'Android', 'Android', 'Linux'];

export const SCREEN_SIZES = ['1920x1080', '1920x1080', '2560x1440', '1440x900', '1366x768', '390x844', '393x852', '412x915', '820x1180'];

export const EXPERIMENTS = ['checkout_v2', 'new_nav', 'free_shipping_banner', 'reco_model_b', 'none', 'none', 'none'];

export const AUDIT_ACTIONS = [
  'update', 'update', 'update', 'update', 'create', 'create', 'login', 'login', 'login', 'logout', 'delete',
  'export', 'password_reset', 'permission_change', 'refund_issued', 'address_changed',
];

export const AUDIT_ENTITY_TYPES = ['order', 'order', 'order', 'customer', 'customer', 'product', 'payment', 'shipment', 'session', 'coupon'];

export const ACTOR_TYPES = ['user', 'user', 'user', 'user', 'admin', 'system', 'system', 'api'];
